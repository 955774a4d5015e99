"""Seeing results: the search page of ``vtzoo serve`` and self-contained HTML reports.

* :mod:`vtzoo.serve.library`: text and "more like this" queries over one index collection.
* :mod:`vtzoo.serve.thumbnails`: thumbnail strips, made once and cached by content hash.
* :mod:`vtzoo.serve.app`: the web app (Starlette; the ``serve`` extra).
* :mod:`vtzoo.serve.report`: ``vtzoo search --html`` and ``vtzoo eval --html``.
"""
