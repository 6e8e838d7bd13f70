"""``zoomplan evaluate``: the paper's results table for a checkpoint (placeholder until evaluate lands)."""
