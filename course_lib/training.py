"""The pattern every custom `train_step` model of the course follows.

Generative models rarely fit `model.compile(loss=...)`: a GAN has two networks and two
optimizers, a diffusion model draws noise and timesteps inside the step. So they subclass
`keras.Model` and write their own `train_step` (as keras.io's examples do). Four details make
such a model train the same on one CPU, under mixed precision, and on several GPUs:

1. **Build before `fit`, inside `strategy.scope()`.** Give the model a `call()` and call
   `model.build(input_shape)`, and build every optimizer on its variables
   (`prepare_optimizer`). Under `MirroredStrategy`, Keras otherwise builds the model by
   calling it on a data batch (wrong for a GAN, whose `call` takes latent vectors) and creates
   the optimizer slots lazily inside a replica, which fails with
   `InvalidArgumentError: You must feed a value for placeholder tensor ...cond/Placeholder`.
2. **Divide the loss by the number of replicas before differentiating.** Each replica sees
   `batch_size / replicas` examples and the replicas' gradients are *summed*, so a per-replica
   mean loss must be divided by the replica count to give the single-device gradient
   (`loss_to_differentiate`). Track the *undivided* loss in the metrics: Keras averages metric
   values across replicas, so the logged number is the true loss.
3. **Scale the loss under float16.** `prepare_optimizer` wraps the optimizer in a
   `keras.optimizers.LossScaleOptimizer` when the policy is `mixed_float16`;
   `loss_to_differentiate` multiplies by its loss scale and `apply_gradients` divides it out
   again (skipping steps whose gradients overflowed).
4. **Add the weight penalties.** `compile(loss=...)` adds a model's `losses` (from
   `kernel_regularizer=...`) itself; a custom step must do it (`with_penalties`), or a
   regularizer is silently ignored.

Example:

    class TwoNetworkModel(keras.Model):
        def compile(self, optimizer_a, optimizer_b, **kwargs):
            super().compile(**kwargs)
            self.optimizer_a = prepare_optimizer(optimizer_a, self.net_a.trainable_variables)
            ...

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = ...                                     # mean over this replica's batch
                scaled = loss_to_differentiate(with_penalties(loss, self.net_a),
                                               self.optimizer_a)
            grads = tape.gradient(scaled, self.net_a.trainable_variables)
            self.optimizer_a.apply_gradients(zip(grads, self.net_a.trainable_variables))
            self.loss_tracker.update_state(loss)               # the undivided loss
            ...

    with runtime.strategy.scope():
        model = TwoNetworkModel(...)
        model.build((None, latent_dim))
        model.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4))
    model.fit(dataset, epochs=num_epochs)
"""

import keras
import tensorflow as tf


def num_replicas():
    """Replicas training in sync under the current strategy (1 outside any strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def prepare_optimizer(optimizer, variables):
    """Returns `optimizer` ready for a custom `train_step`: loss-scaled if needed, and built.

    Call it inside `strategy.scope()` (for example in the model's `compile`).

    Args:
        optimizer: a Keras optimizer instance.
        variables: the variables it will update (e.g. `generator.trainable_variables`); the
            network must already be built.
    """
    if not variables:
        raise ValueError(
            "prepare_optimizer got no variables: build the network first (give it a "
            "keras.Input or call model.build(input_shape)) and pass its trainable_variables."
        )
    policy = keras.mixed_precision.global_policy().name
    if policy == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)
    return optimizer


def loss_to_differentiate(loss, optimizer):
    """The loss to give `tape.gradient`: divided by the replica count, times the loss scale.

    Args:
        loss: the mean loss over this replica's part of the batch (a scalar).
        optimizer: the optimizer that will apply the gradients (see `prepare_optimizer`).
    """
    loss = keras.ops.cast(loss, "float32") / num_replicas()
    return optimizer.scale_loss(loss)


def with_penalties(loss, network):
    """`loss` plus the weight penalties of `network` (`kernel_regularizer=...`): what to train on.

    `compile(loss=...)` adds a model's `losses` itself; a custom `train_step` must add them,
    or a regularizer is silently ignored. Track `loss` without them in the metrics: a penalty
    is not part of how well the model fits the data.
    """
    penalties = network.losses
    if not penalties:
        return loss
    return loss + keras.ops.cast(keras.ops.sum(keras.ops.stack(penalties)), loss.dtype)
