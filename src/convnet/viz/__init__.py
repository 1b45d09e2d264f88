"""Pictures: training curves, first-layer filters, activation maps, score heatmaps (PNG, matplotlib Agg)."""
from .plots import plot_activations, plot_curves, plot_filters

__all__ = ["plot_curves", "plot_filters", "plot_activations"]
