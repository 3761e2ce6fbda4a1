"""pytorch-hebbian's ``handlers``: ``tensorboard_logger`` (TensorBoard handlers), ``tqdm_logger`` (``TqdmLogger``)."""
