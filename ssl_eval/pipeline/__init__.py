"""The steps the Prefect tasks call, each a plain function: plan, embed, measure.

:mod:`.planning` compares the store with the records; :mod:`.embedding` runs a checkpoint's
backbone over the evaluation splits (:mod:`.inference` batches the forward passes,
:mod:`.budget` and :mod:`.preflight` check what it will ask for before it starts);
:mod:`.evaluation` computes a checkpoint's record parts (metric groups, probes); what each
step did comes back as the frozen values of :mod:`.outcomes`; :mod:`.failures` says when a
recorded failure still stands.

Layer: imports ``ssl_eval.analysis``, ``sources``, ``results``, ``config``, ``metrics``,
``probe`` and ``common``.
"""
