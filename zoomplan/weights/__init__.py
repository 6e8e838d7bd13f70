"""The shipped default checkpoint lives here (``default.pt``); see docs/model-card.md."""
