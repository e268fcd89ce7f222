"""Pictures of attributions: image heatmaps, highlighted text and feature bar charts.

Each function takes an alibi ``Explanation`` (as returned by
:meth:`ig_plugin.IntegratedGradients.explain`) or plain numpy arrays, and returns a matplotlib
``Figure`` or an HTML string without showing it: save it with ``fig.savefig(path)``, display it
in a notebook, or embed it in a page. Nothing goes through pyplot's global state.

One colour convention throughout: green for attributions that raise the explained output, red
for those that lower it, white for zero, on a scale centred at zero. Pass ``cmap="RdBu_r"`` (or
``"PiYG"``) to the image function for readers who do not tell red from green.
"""

from ig_plugin.visualization._common import ATTRIBUTION_CMAP, SIGNS
from ig_plugin.visualization._images import plot_image_attributions
from ig_plugin.visualization._tabular import plot_feature_attributions
from ig_plugin.visualization._text import text_attributions_html

__all__ = [
    "ATTRIBUTION_CMAP",
    "SIGNS",
    "plot_feature_attributions",
    "plot_image_attributions",
    "text_attributions_html",
]
