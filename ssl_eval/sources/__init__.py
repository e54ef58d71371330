"""What is read: the checkpoint store and the data sets, all of it untrusted input.

Discovering and fingerprinting checkpoints (:mod:`.checkpoints`, :mod:`.checkpoint_names`, :mod:`.layout`), loading them
with ``torch.load(weights_only=True)`` (:mod:`.loading`, :mod:`.formats`,
:mod:`.tensor_checks`), building the backbone their weights go into (:mod:`.models`,
:mod:`.token_pooling`, :mod:`.model_building`), and the images: data set readers within bounds
(:mod:`.datasets`, :mod:`.archives`, :mod:`.data_files`), the fixed evaluation splits (:mod:`.splits`), model input
(:mod:`.preprocess`) and augmented views (:mod:`.augment`).

Layer: imports ``ssl_eval.config`` and ``ssl_eval.common``.
"""
