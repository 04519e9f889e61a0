"""Training: GenRecTrainer, full-ranking metrics and training curves."""
