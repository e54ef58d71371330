"""What a person reads: the report on the terminal, as JSON, CSV, Markdown and an HTML page with figures.

:mod:`.document` collects every family's rows and its stored analysis and verdict (never
computing them: stale answers are said to be stale), :mod:`.report` prints them; :mod:`.cells` writes each
number the same way on every surface; :mod:`.csv_table`, :mod:`.markdown` (the Prefect
artifact) and :mod:`.html_page` are the other surfaces; :mod:`.figures` draws the matplotlib
figures the HTML page and the MLflow mirror embed.

Layer: imports ``ssl_eval.verdict`` and everything below it.
"""
