"""Projections: pure folds from events to rows, the tables they fill, and the projector."""
