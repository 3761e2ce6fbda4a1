"""pytorch-hebbian's ``handlers``: ``tensorboard_logger`` (TensorBoard handlers) and ``tqdm_logger`` (``TqdmLogger``)."""
