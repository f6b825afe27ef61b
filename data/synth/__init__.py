"""Synthetic street photos of surveillance cameras rendered with Blender (see docs/synthetic.md)."""
