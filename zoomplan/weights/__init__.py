"""The shipped default checkpoint lives here (``default.pt``); see README's model card."""
