"""An example SafeCompress plugin: one attack, one remedy, one fixture (see ``plugin.py``)."""

from safecompress_myplugin.attacks import top2_margin_attack, top2_margin_signal
from safecompress_myplugin.remedies import LogitNormPenalty

__version__ = "0.1.0"
__all__ = ["LogitNormPenalty", "top2_margin_attack", "top2_margin_signal"]
