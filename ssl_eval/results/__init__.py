"""What is written: the results of an evaluation, in the work dir or at a results URL.

Zarr embeddings per checkpoint, committed atomically (:mod:`.embeddings`, the interface;
:mod:`.local_embeddings` and :mod:`.url_embeddings`, its two implementations;
:mod:`.zarr_groups`), the JSON records beside them that are the source of truth
(:mod:`.records`, the interface; :mod:`.local_records` and :mod:`.url_records`, its two
implementations; each part typed in :mod:`.parts`, the stored analyses and verdicts in
:mod:`.answers`), the work dir that holds both with its locks (:mod:`.workspace`) and the
one-serve-per-work-dir lock (:mod:`.serve_lock`).

Layer: imports ``ssl_eval.config`` and ``ssl_eval.common``.
"""
