"""The development-only demo app: its data and its commands."""
