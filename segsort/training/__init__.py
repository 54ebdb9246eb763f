"""The parts of the mode-agnostic trainer (segsort.trainer), one per idea.

distribution   the strategy, this process's place in it, the replicas
state          what a run trains: network, step, optimizer, learning rate
step           the training step: losses, gradients and the update
checkpointing  the snapshot directory, checkpoints, resume and restore
health         divergence checks, and stopping a run that diverged
inputs         this worker's stream of batches and the pictured batch
"""
