"""Progress bars that suit where the code runs.

    for it in progress.bar(range(n), desc="baseline"):
        ...

- In a Jupyter kernel (JupyterLab, or papermill under ``make reproduce``): a widget bar while
  the loop runs, replaced by one plain text line when it ends, so an executed notebook keeps
  a readable record ("baseline: 100%|...| 3000/3000 [07:02<00:00, 7.1it/s]") and no widget.
- In a terminal: tqdm's text bar on stderr, cleared when the loop ends.
- Elsewhere (a log file, CI): no bar, unless ``$SSLKIT_PROGRESS`` is ``log`` (``python -m
  sslkit headless --progress``): then a plain line every 30 seconds.
"""
from __future__ import annotations

import functools
import os
import sys

from tqdm import tqdm


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (not a terminal IPython)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return type(shell).__name__ == "ZMQInteractiveShell"


@functools.cache
def _widget_bar_class():
    """tqdm's notebook bar, displayed through a display handle that :meth:`close` replaces
    with the final text line (None when ipywidgets is missing)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython.display import display
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return None

    class WidgetBar(notebook_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, display=False, **kwargs)
            self._handle = None if self.disable else display(self.container, display_id=True)

        def close(self):
            if self.disable or self._handle is None:
                return super().close()
            handle, self._handle = self._handle, None
            line = self.format_meter(**self.format_dict)
            super().close()
            handle.update({"text/plain": line}, raw=True)
            _close_widgets(self.container)

    return WidgetBar


def _close_widgets(widget) -> None:
    """Close ``widget``, its children, layouts and styles, so that no widget state is left
    behind (an executed notebook would store it in its metadata)."""
    for child in getattr(widget, "children", ()):
        _close_widgets(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if part is not None:
            part.close()
    widget.close()


def bar(iterable=None, *, desc: str = "", total: int | None = None, initial: int = 0,
        enabled: bool = True, **kwargs) -> tqdm:
    """A progress bar over ``iterable`` (a tqdm object; see the module docstring).

    Args:
        iterable: what to iterate (or None, and call ``update``).
        desc: the bar's label.
        total: the number of steps (default: ``len(iterable)``).
        initial: steps already done (a resumed run).
        enabled: False gives a silent bar.
        kwargs: passed to tqdm.
    Returns:
        The bar; iterate it, or call ``update``/``set_postfix``; closed at the loop's end.
    """
    if enabled and _in_kernel():
        widget = _widget_bar_class()
        if widget is not None:
            return widget(iterable, desc=desc, total=total, initial=initial, leave=False, **kwargs)
    if enabled and os.environ.get("SSLKIT_PROGRESS") == "log":
        return tqdm(iterable, desc=desc, total=total, initial=initial, mininterval=30, ascii=True, **kwargs)
    return tqdm(iterable, desc=desc, total=total, initial=initial, leave=False,
                disable=None if enabled else True, **kwargs)
