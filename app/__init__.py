"""kb's Streamlit UI: a thin client of `kb serve` (no model or store in this process)."""
