"""Pictures: training curves, first-layer filters, activation maps, score heatmaps (PNG, matplotlib Agg)."""
from .activations import plot_activations
from .heatmap import plot_score_heatmap, plot_score_heatmaps
from .plots import plot_curves, plot_filters

__all__ = ["plot_curves", "plot_filters", "plot_activations", "plot_score_heatmap", "plot_score_heatmaps"]
