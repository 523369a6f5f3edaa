"""flare-ml: bone flare versus progression from timepoint tables."""

__version__ = "0.1.0"
