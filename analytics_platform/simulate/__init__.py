"""Seeded, realistic traffic written straight into the raw lake (``analytics-platform simulate``).
"""

from analytics_platform.simulate.traffic import SimConfig, Traffic, generate
from analytics_platform.simulate.writer import WriteReport, write_traffic

__all__ = ["SimConfig", "Traffic", "WriteReport", "generate", "write_traffic"]
