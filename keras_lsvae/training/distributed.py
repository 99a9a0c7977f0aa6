"""A ``strategy.run`` training loop: what ``model.fit`` / ``model.evaluate`` do, for strategies
under which Keras 3's ``fit`` fails.

Keras 3 cannot ``fit`` under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585, open; with
Keras 3.15.1 and TF 2.21 ``fit`` raises "Attempt to convert a value (PerReplica...) with an
unsupported type to a Tensor" while it builds the model). :class:`StrategyLoop` runs the models'
own ``train_step`` and ``test_step`` (the same code ``fit`` runs, with the same replica scaling
of gradients, `keras_lsvae.models.base`) inside ``strategy.run`` and drives the same Keras
callbacks, so a multi-worker run writes the same checkpoints, logs, samples, ``history.json``,
``metrics.json`` and ``model.keras`` as a ``fit`` run.

Data: the global batch is split across the replicas of all workers by
``experimental_distribute_dataset`` with ``AutoShardPolicy.DATA``: every worker builds the same
seeded stream (`keras_lsvae.data.pipeline.train_stream`) and keeps its replicas' contiguous
slices of each global batch, so step t of a 2-worker run trains on exactly the global batch of
step t of a single process (tests/test_multiworker.py). FILE sharding would need as many input
files as workers and would change which examples form a batch.

Logged metrics: each replica's ``train_step`` returns its running means over its share of the
batch (the models' ``keras.metrics.Mean`` trackers); they are averaged over all replicas with
``strategy.reduce(MEAN)`` (an all-reduce across workers), which with equal per-replica batches
is the mean over the global batch.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """``dataset`` (global batches) split across ``strategy``'s replicas, every worker reading
    the same stream and keeping its own slices (module docstring)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


class StrategyLoop:
    """``fit`` and ``evaluate`` for ``model`` under ``strategy``, with the arguments of
    ``keras.Model.fit`` / ``evaluate`` that the training loop uses."""

    def __init__(self, model: keras.Model, strategy: tf.distribute.Strategy):
        self.model, self.strategy = model, strategy
        self._train_function = self._make_function(model.train_step)
        self._test_function = self._make_function(model.test_step)

    def _make_function(self, step):
        strategy = self.strategy

        def one_step(batch):
            logs = strategy.run(step, args=(batch,))
            return {key: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for key, value in logs.items()}

        return tf.function(one_step, jit_compile=bool(self.model.jit_compile),
                           reduce_retracing=True)

    @staticmethod
    def _numbers(logs):
        return {key: float(np.asarray(value)) for key, value in logs.items()}

    def fit(self, dataset, *, epochs, initial_epoch=0, steps_per_epoch, callbacks=(),
            validation_data=None, verbose=1, shuffle=False):
        """Train epochs ``initial_epoch .. epochs - 1`` of ``steps_per_epoch`` steps on the
        (endless) ``dataset``; ``shuffle`` is accepted for ``fit``'s signature and ignored (the
        stream is shuffled)."""
        del shuffle
        model = self.model
        callback_list = keras.callbacks.CallbackList(
            list(callbacks), add_history=False, add_progbar=verbose != 0, verbose=verbose,
            epochs=epochs, steps=steps_per_epoch, model=model)
        iterator = iter(distribute(self.strategy, dataset))
        model.stop_training = False
        callback_list.on_train_begin()
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            logs = {}
            for batch in range(steps_per_epoch):
                callback_list.on_train_batch_begin(batch)
                logs = self._train_function(next(iterator))
                callback_list.on_train_batch_end(batch, logs)
                if model.stop_training:
                    break
            epoch_logs = self._numbers(logs)
            if validation_data is not None:
                val_logs = self.evaluate(validation_data, callbacks=callback_list)
                epoch_logs.update({f"val_{key}": value for key, value in val_logs.items()})
            callback_list.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs=epoch_logs)

    def evaluate(self, dataset, verbose=0, return_dict=True, callbacks=None):
        """Mean test losses over the (finite) ``dataset``, as ``model.evaluate`` returns them
        with ``return_dict=True``."""
        del verbose, return_dict
        model = self.model
        if callbacks is not None:
            callbacks.on_test_begin()
        model.reset_metrics()
        logs = {}
        for batch, data in enumerate(distribute(self.strategy, dataset)):
            if callbacks is not None:
                callbacks.on_test_batch_begin(batch)
            logs = self._test_function(data)
            if callbacks is not None:
                callbacks.on_test_batch_end(batch, logs)
        logs = self._numbers(logs)
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs
