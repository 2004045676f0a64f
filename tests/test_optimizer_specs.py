"""lossjax.optimizer from plain data: every optax.contrib transform, schedules, nested optimizers, injection."""

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import lossjax
from lossjax import registry
from lossjax.testing import assert_close

SGD = {"name": "sgd", "learning_rate": 0.1}
#: Plain-data hyperparameters each optax.contrib factory needs (the rest keep optax's defaults).
CONTRIB = {
    "acprop": {"learning_rate": 0.1},
    "ademamix": {"learning_rate": 0.1},
    "adopt": {"learning_rate": 0.1},
    "cocob": {},
    "dadapt_adamw": {},
    "differentially_private_aggregate": {"l2_norm_clip": 1.0, "noise_multiplier": 0.0, "key": 0},
    "dog": {},
    "dowg": {},
    "dpsgd": {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 0.0, "seed": 0},
    "galore": {"learning_rate": 0.1},
    "hutchinson_estimator_diag_hessian": {},
    "madgrad": {"learning_rate": 0.1},
    "mechanize": {"base_optimizer": SGD},
    "momo": {},
    "momo_adam": {},
    "muon": {"learning_rate": 0.1},
    "normalize": {},
    "prodigy": {},
    "reduce_on_plateau": {},
    "sam": {"optimizer": SGD, "adv_optimizer": {"name": "sgd", "learning_rate": 0.05}, "sync_period": 2},
    "scale_by_acprop": {},
    "scale_by_ademamix": {},
    "scale_by_adopt": {},
    "scale_by_cocob": {},
    "scale_by_galore": {},
    "scale_by_madgrad": {"learning_rate": 0.1},
    "scale_by_muon": {},
    "scale_by_simplified_ademamix": {},
    "schedule_free": {"base_optimizer": SGD, "learning_rate": 0.1},
    "schedule_free_adamw": {},
    "schedule_free_sgd": {},
    "simplified_ademamix": {"learning_rate": 0.1},
    "sophia": {"learning_rate": 0.1},
    "split_real_and_imaginary": {"inner": SGD},
}
#: Callables of optax.contrib that are not gradient transformations.
NOT_TRANSFORMS = {"schedule_free_eval_params"}
#: Update needs more than (updates, state, params): value=, obj_fn=, per-example gradients, a grad_fn ...
EXTRA_ARGS = {
    "momo",
    "momo_adam",
    "reduce_on_plateau",
    "sophia",
    "hutchinson_estimator_diag_hessian",
    "dpsgd",
    "differentially_private_aggregate",
    "galore",
    "scale_by_galore",
    "scale_by_muon",
}  # scale_by_muon: dimension numbers matching the params


def _contrib_factories() -> set[str]:
    return {
        n
        for n in dir(optax.contrib)
        if not n.startswith("_")
        and callable(getattr(optax.contrib, n))
        and not inspect.isclass(getattr(optax.contrib, n))
    }


def test_the_table_names_every_optax_contrib_transform():
    assert _contrib_factories() == set(CONTRIB) | NOT_TRANSFORMS, (
        "optax.contrib changed: add the new names to CONTRIB (with their required hyperparameters)"
    )


@pytest.mark.filterwarnings('ignore:"seed" is deprecated:DeprecationWarning')  # optax's dpsgd passes seed itself
@pytest.mark.parametrize("name", sorted(CONTRIB))
def test_every_contrib_transform_builds_from_plain_data_and_round_trips(name):
    # a name lossjax also registers (sam) names optax's with the contrib. prefix
    spec = {"name": f"contrib.{name}" if name in lossjax.available() else name, **CONTRIB[name]}
    json.dumps(spec)  # plain data
    tx = lossjax.optimizer([spec])
    assert isinstance(tx, (optax.GradientTransformation, optax.GradientTransformationExtraArgs))
    cfg = tx.to_config()
    assert cfg == {"chain": [spec]}
    assert lossjax.from_config(json.loads(json.dumps(cfg))).to_config() == cfg
    if name in EXTRA_ARGS:
        return
    params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]])}
    grads = {"w": jnp.array([[0.3, -0.1], [0.2, 0.4]])}
    direct = getattr(optax.contrib, name)(
        **{
            k: (optax.sgd(**{a: b for a, b in v.items() if a != "name"}) if isinstance(v, dict) else v)
            for k, v in CONTRIB[name].items()
        }
    )
    u1, _ = tx.update(grads, tx.init(params), params)
    u2, _ = direct.update(grads, direct.init(params), params)
    assert_close(u1["w"], u2["w"])


def test_a_schedule_and_inject_hyperparams_from_plain_data():
    sched = {"name": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 2,
             "decay_steps": 10}  # fmt: skip
    spec = [{"name": "clip_by_global_norm", "max_norm": 10.0}, {"name": "sgd", "learning_rate": sched}]
    tx = lossjax.optimizer(spec)
    want = optax.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10)
    params = jnp.array([1.0, 2.0])
    grads = jnp.array([0.5, -1.0])
    state = tx.init(params)
    for step in range(3):  # lr = 0, 0.5, 1.0
        u, state = tx.update(grads, state, params)
        assert_close(u, -float(want(step)) * grads)
    assert lossjax.from_config(tx.to_config()).to_config() == {"chain": spec}
    # inject_hyperparams: the learning rate lives in the state and can be changed between steps
    tx = lossjax.optimizer({"name": "adam", "learning_rate": 1e-3, "inject_hyperparams": True})
    state = tx.init(params)
    inner = state[0]
    assert float(inner.hyperparams["learning_rate"]) == pytest.approx(1e-3)
    inner.hyperparams["learning_rate"] = jnp.asarray(0.5)
    u, _ = tx.update(grads, state, params)
    assert_close(u, -0.5 * jnp.sign(grads), rtol=1e-4)  # adam's first step is lr * sign(g)
    # with static args and a schedule as an injected hyperparameter
    tx = lossjax.optimizer(
        {
            "name": "contrib.prodigy",
            "learning_rate": {"name": "constant_schedule", "value": 0.5},
            "inject_hyperparams": {"static_args": ["estim_lr_coef"]},
        }
    )
    state = tx.init(params)
    assert float(state[0].hyperparams["learning_rate"]) == 0.5


def test_sam_from_plain_data_matches_optax_contrib_sam():
    spec = {"name": "contrib.sam", "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "adv_optimizer": {"name": "sgd", "learning_rate": 0.05}, "sync_period": 2}  # fmt: skip
    tx = lossjax.optimizer(spec)
    ref = optax.contrib.sam(optax.sgd(0.1), optax.sgd(0.05), sync_period=2)
    params = jnp.array([1.0, -1.0])
    s1, s2 = tx.init(params), ref.init(params)
    for k in range(4):
        g = jnp.array([0.3, 0.2]) * (k + 1)
        u1, s1 = tx.update(g, s1, params)
        u2, s2 = ref.update(g, s2, params)
        assert_close(u1, u2)
        params = params + u1


def test_nested_chain_and_errors():
    tx = lossjax.optimizer({"name": "contrib.mechanize", "base_optimizer": {"chain": [SGD]}})
    assert isinstance(tx, optax.GradientTransformation)
    with pytest.raises(KeyError, match="neither a lossjax transform nor an optax function"):
        lossjax.optimizer({"name": "sgd", "learning_rate": {"name": "cosine_decay_schedul", "init_value": 1.0}})
    with pytest.raises(registry.SpecError, match="not a gradient transformation"):
        lossjax.optimizer({"name": "constant_schedule", "value": 1.0})
    with pytest.raises(registry.SpecError, match="'inject_hyperparams' must be true/false"):
        lossjax.optimizer({"name": "sgd", "learning_rate": 0.1, "inject_hyperparams": "yes"})
    with pytest.raises(KeyError, match=r"contrib\.nope"):
        lossjax.optimizer({"name": "contrib.nope"})
    np.testing.assert_equal(registry._optax_factory("contrib.sam") is optax.contrib.sam, True)
    with pytest.raises(registry.SpecError, match="cannot parse spec"):  # dotted names need the dict form
        lossjax.optimizer("contrib.normalize")
    assert jax.tree.leaves(lossjax.optimizer({"name": "contrib.normalize"}).init(jnp.zeros(2))) == []


def test_an_optax_transform_takes_its_learning_rate_positionally_in_a_spec_string():
    import jax.numpy as jnp
    import numpy as np
    import optax
    import pytest

    import lossjax
    from lossjax.registry import SpecError

    tx = lossjax.optimizer(["adamw(3e-3)"])
    assert tx.to_config() == {"chain": [{"name": "adamw", "learning_rate": 0.003}]}
    p = {"w": jnp.array([1.0, -2.0, 3.0])}
    g = {"w": jnp.array([0.5, 0.5, -1.0])}
    ref = optax.adamw(3e-3)
    np.testing.assert_array_equal(tx.update(g, tx.init(p), p)[0]["w"], ref.update(g, ref.init(p), p)[0]["w"])
    with pytest.raises(SpecError, match=r"focal_loss\(...\) takes keyword hyperparameters only"):
        lossjax.get("focal_loss(2.0)")
    with pytest.raises(SpecError, match=r"adamw\(...\) takes keyword hyperparameters only"):
        lossjax.optimizer(["adamw(1e-3, 0.9)"])
