"""Placeholder until the family lands; see CONTRIBUTING.md."""

__all__: list[str] = []
