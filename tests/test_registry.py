"""The registry: specs, weighted sums, round trips and actionable errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from lossjax import registry
from lossjax.testing import assert_close

LOGITS = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
LABELS = jnp.array([0, 2, 1])


def test_get_by_name_alias_string_and_dict_agree():
    direct = lossjax.losses.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=0.2)
    for spec in (
        "softmax_cross_entropy(label_smoothing=0.2)",
        "ce(label_smoothing=0.2)",
        {"name": "cross_entropy", "label_smoothing": 0.2},
    ):
        assert_close(lossjax.get(spec)(LOGITS, LABELS), direct, err=str(spec))
    assert_close(lossjax.get("ce", label_smoothing=0.2)(LOGITS, LABELS), direct)


def test_composed_loss_returns_total_and_terms():
    combo = lossjax.compose("1.0 * softmax_cross_entropy + 0.5 * softmax_cross_entropy(label_smoothing=0.1) - 0.25*bce")
    assert combo.names == ("softmax_cross_entropy", "softmax_cross_entropy_1", "sigmoid_binary_cross_entropy")
    probs = jnp.asarray(jax.nn.one_hot(LABELS, 3))
    total, terms = combo(LOGITS, probs)
    ce = jnp.mean(lossjax.losses.softmax_cross_entropy(LOGITS, probs))
    ls = jnp.mean(lossjax.losses.softmax_cross_entropy(LOGITS, probs, label_smoothing=0.1))
    bce = jnp.mean(lossjax.losses.sigmoid_binary_cross_entropy(LOGITS, probs))
    assert_close(terms["softmax_cross_entropy"], ce)
    assert_close(terms["softmax_cross_entropy_1"], ls)
    assert_close(terms["sigmoid_binary_cross_entropy"], bce)
    assert_close(total, ce + 0.5 * ls - 0.25 * bce)
    _, vec = combo.stacked(LOGITS, probs)
    assert vec.shape == (3,)


def test_composed_loss_masked_mean_and_grad():
    combo = lossjax.compose(["ce", {"name": "ce", "weight": 2.0, "label_smoothing": 0.1}])
    where = jnp.array([True, False, True])
    total, _ = combo(LOGITS, LABELS, where=where)
    per = lossjax.losses.softmax_cross_entropy(LOGITS[jnp.array([0, 2])], LABELS[jnp.array([0, 2])])
    per_ls = lossjax.losses.softmax_cross_entropy(
        LOGITS[jnp.array([0, 2])], LABELS[jnp.array([0, 2])], label_smoothing=0.1
    )
    assert_close(total, jnp.mean(per) + 2 * jnp.mean(per_ls))
    g = jax.grad(lambda z: combo(z, LABELS, where=where)[0])(LOGITS)
    assert np.all(np.asarray(g[1]) == 0)


@pytest.mark.parametrize(
    "spec",
    [
        "softmax_cross_entropy",
        "softmax_cross_entropy(label_smoothing=0.1)",
        "ce + 0.5*bce(pos_weight=2.0)",
        {"terms": [{"name": "ce", "weight": 1.0}], "reduction": "sum"},
        {"name": "ce", "class_weights": [1.0, 2.0, 0.5]},
    ],
)
def test_round_trip_through_json(spec):
    obj = (
        lossjax.compose(spec) if (isinstance(spec, dict) and "terms" in spec) or "+" in str(spec) else lossjax.get(spec)
    )
    cfg = obj.to_config()
    again = lossjax.from_config(json.loads(json.dumps(cfg)))
    assert again.to_config() == cfg
    probs = jnp.asarray(jax.nn.one_hot(LABELS, 3))
    assert_close(again(LOGITS, probs), obj(LOGITS, probs))


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError, match=r"unknown loss or transform 'softmax_crossentropy'.*'softmax_cross_entropy'"):
        lossjax.get("softmax_crossentropy")


def test_unknown_hyperparameter_lists_allowed():
    with pytest.raises(TypeError, match=r"no hyperparameter 'label_smoothin'.*Did you mean 'label_smoothing'.*Allowed"):
        lossjax.get("ce(label_smoothin=0.1)")


def test_runtime_args_are_not_hyperparameters():
    with pytest.raises(TypeError, match="no hyperparameter 'where'"):
        lossjax.get("ce", where=None)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ce(", "cannot parse spec"),
        ("ce(0.1)", "keyword hyperparameters only"),
        ("ce(label_smoothing=__import__('os'))", "is not a literal"),
        ("ce * bce", "a number times a loss"),
        ("ce.x", "cannot parse spec"),
        ("", "must be non-empty"),
        ({"gamma": 2.0}, "needs a 'name'"),
        ([], "empty list"),
        (3, "must be a string, dict or list"),
    ],
)
def test_malformed_specs(spec, match):
    with pytest.raises(registry.SpecError, match=match):
        lossjax.get(spec)


def test_nothing_is_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(registry.SpecError):
        lossjax.get(f"ce(label_smoothing=open({str(marker)!r}, 'w'))")
    assert not marker.exists()


def test_available_and_describe():
    names = lossjax.available()
    assert names == sorted(names) and "softmax_cross_entropy" in names
    assert "softmax_cross_entropy" in lossjax.available(family="classification")
    assert all(registry.get_entry(n).kind == "per_example" for n in lossjax.available(kind="per_example"))
    with pytest.raises(ValueError, match="unknown family"):
        lossjax.available(family="nope")
    text = lossjax.describe("ce")
    assert "label_smoothing = 0.0" in text and "paper:" in text and "reference:" in text


def test_register_rejects_duplicates_and_bad_kind():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("ce", family="x", kind="per_example")(lambda x: x)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        registry.register("zzz", family="x", kind="weird")


def test_optimizer_chain_of_optax_names_round_trips():
    tx = lossjax.optimizer(["clip_by_global_norm(max_norm=1.0)", {"name": "sgd", "learning_rate": 0.1}])
    assert isinstance(tx, optax.GradientTransformation)
    cfg = tx.to_config()
    assert cfg == {"chain": [{"name": "clip_by_global_norm", "max_norm": 1.0}, {"name": "sgd", "learning_rate": 0.1}]}
    again = lossjax.from_config(cfg)
    params = {"w": jnp.array([3.0, 4.0])}
    grads = {"w": jnp.array([3.0, 4.0])}
    u1, _ = tx.update(grads, tx.init(params), params)
    u2, _ = again.update(grads, again.init(params), params)
    # clipped to norm 1 then scaled by -0.1
    assert_close(u1["w"], jnp.array([-0.06, -0.08]))
    assert_close(u2["w"], u1["w"])


def test_optimizer_rejects_unknown_and_losses():
    with pytest.raises(KeyError, match="neither a lossjax transform nor an optax function"):
        lossjax.optimizer(["adamm(learning_rate=0.1)"])
    with pytest.raises(registry.SpecError, match="is a loss, not a transform"):
        lossjax.optimizer(["ce"])


# ------------------------------ the return contract ------------------------------


def test_get_returns_the_loss_itself_whatever_its_weight():
    direct = lossjax.losses.softmax_cross_entropy(LOGITS, LABELS)
    for spec in ("ce", "0.5 * ce", {"name": "ce", "weight": 0.5}, "-2 * ce"):
        loss = lossjax.get(spec)
        out = loss(LOGITS, LABELS)
        assert out.shape == direct.shape, spec  # a weight never changes the return type
        weight = {"ce": 1.0, "0.5 * ce": 0.5, "-2 * ce": -2.0}.get(spec, 0.5) if isinstance(spec, str) else 0.5
        assert_close(out, weight * direct, err=str(spec))
    assert lossjax.get("0.5 * ce").to_config() == {"name": "softmax_cross_entropy", "weight": 0.5}
    again = lossjax.from_config(lossjax.get("0.5 * ce").to_config())
    assert_close(again(LOGITS, LABELS), 0.5 * direct)


@pytest.mark.parametrize("spec", ["ce + bce", ["ce"], {"terms": [{"name": "ce"}]}])
def test_get_rejects_sums_and_points_to_compose(spec):
    with pytest.raises(registry.SpecError, match=r"lossjax.compose"):
        lossjax.get(spec)


@pytest.mark.parametrize("spec", ["ce", "0.5 * ce", ["ce"], {"name": "ce"}])
def test_compose_always_returns_total_and_terms(spec):
    total, terms = lossjax.compose(spec)(LOGITS, LABELS)
    per = lossjax.losses.softmax_cross_entropy(LOGITS, LABELS)
    weight = 0.5 if "0.5" in str(spec) else 1.0
    assert total.shape == () and list(terms) == ["softmax_cross_entropy"]
    assert_close(terms["softmax_cross_entropy"], jnp.mean(per))
    assert_close(total, weight * jnp.mean(per))


def test_compose_routes_arguments_to_the_terms_that_take_them():
    # The PaLM recipe: z_loss takes the logits only.
    combo = lossjax.compose("softmax_cross_entropy + 1e-4 * z_loss")
    assert combo.arguments() == ("logits", "labels")
    total, terms = combo(LOGITS, LABELS)
    ce = jnp.mean(lossjax.losses.softmax_cross_entropy(LOGITS, LABELS))
    z = jnp.mean(jax.nn.logsumexp(LOGITS, axis=-1) ** 2)
    assert_close(terms["softmax_cross_entropy"], ce)
    assert_close(terms["z_loss"], z)
    assert_close(total, ce + 1e-4 * z)
    # Keywords route by name too, and `where` reduces every per-example term.
    where = jnp.array([True, False, True])
    total_kw, _ = combo(logits=LOGITS, labels=LABELS, where=where)
    keep = jnp.array([0, 2])
    ce_kw = jnp.mean(lossjax.losses.softmax_cross_entropy(LOGITS[keep], LABELS[keep]))
    z_kw = jnp.mean(jax.nn.logsumexp(LOGITS[keep], axis=-1) ** 2)
    assert_close(total_kw, ce_kw + 1e-4 * z_kw)
    with pytest.raises(TypeError, match=r"no term takes \['temperature'\]"):
        combo(LOGITS, LABELS, temperature=2.0)
    with pytest.raises(TypeError, match=r"term 'softmax_cross_entropy' needs the argument\(s\) \['labels'\]"):
        combo(LOGITS)


def test_compose_splits_the_key_per_term():
    logits = jnp.array([0.3, -1.2, 2.0, 0.1, -0.4, 1.1])
    labels = jnp.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    key = jax.random.key(3)
    combo = lossjax.compose("sigmoid_binary_cross_entropy + 0.5 * ensloss + ensloss")
    total, terms = combo(logits, labels, key=key)  # bce takes no key: no TypeError
    k1, k2 = jax.random.split(key, 2)
    e1 = lossjax.losses.ensloss(logits, labels, key=k1)
    e2 = lossjax.losses.ensloss(logits, labels, key=k2)
    assert_close(terms["ensloss"], e1)
    assert_close(terms["ensloss_1"], e2)
    assert_close(total, jnp.mean(lossjax.losses.sigmoid_binary_cross_entropy(logits, labels)) + 0.5 * e1 + e2)


def test_compose_returns_the_new_state_of_stateful_terms():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    labels = jnp.array([0, 1, 2, 1])
    temps = jnp.full((4,), 1.0)
    aldr = "adaptive_label_distributionally_robust_loss"
    combo = lossjax.compose(f"softmax_cross_entropy + 0.5 * {aldr}")
    total, terms = combo(logits, labels, temps)
    value, new_temps = jax.jit(lossjax.losses.adaptive_label_distributionally_robust_loss)(logits, labels, temps)
    assert set(terms) == {"softmax_cross_entropy", aldr, "states"}
    assert_close(terms["states"][aldr], new_temps)
    assert_close(terms[aldr], jnp.mean(value))
    ce = jnp.mean(lossjax.losses.softmax_cross_entropy(logits, labels))
    assert_close(total, ce + 0.5 * jnp.mean(value))
    # Under jit and grad too.
    (t2, aux), g = jax.jit(jax.value_and_grad(lambda z: combo(z, labels, temps), has_aux=True))(logits)
    assert_close(t2, total)
    assert_close(aux["states"][aldr], new_temps)
    assert np.all(np.isfinite(np.asarray(g)))
    with pytest.raises(ValueError, match="stateful terms"):
        combo.stacked(logits, labels, temps)


# ------------------------------ hostile and sloppy specs ------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nan * ce", "not a literal|a product must be"),
        ("1e999 * ce", "finite"),
        ({"name": "ce", "weight": float("nan")}, "finite"),
        ({"name": "ce", "weight": "nan"}, "finite"),
        ({"name": "ce", "weight": "heavy"}, "must be a number"),
        ("focal_loss(name='softmax_cross_entropy')", "reserved"),
        ({"name": "focal_loss", "chain": []}, "reserved"),
        (" + ".join(["ce"] * 1000), "more than 256 terms"),
        ("-" * 10_000 + "ce", "nested too deeply|too long"),
    ],
)
def test_hostile_specs_give_clear_errors(spec, match):
    with pytest.raises(registry.SpecError, match=match):
        lossjax.compose(spec)


def test_signs_numeric_strings_and_unicode():
    direct = lossjax.losses.softmax_cross_entropy(LOGITS, LABELS)
    assert_close(lossjax.get("-0.5 * ce")(LOGITS, LABELS), -0.5 * direct)
    assert_close(lossjax.get({"name": "ce", "weight": "0.5"})(LOGITS, LABELS), 0.5 * direct)
    # YAML reads 1e-1 as a string: converted where the default is a number.
    ls = lossjax.get({"name": "ce", "label_smoothing": "1e-1"})
    assert ls.hyperparams["label_smoothing"] == 0.1
    with pytest.raises(TypeError, match="`label_smoothing` must be a number"):
        lossjax.get({"name": "ce", "label_smoothing": "lots"})
    # Full-width look-alikes name the same entry in strings and dicts (NFKC, as Python identifiers).
    assert lossjax.get("\uff43\uff45").name == lossjax.get({"name": "\uff43\uff45"}).name == "softmax_cross_entropy"


def test_hyperparameters_are_validated_when_the_config_is_built():
    for spec, match in [
        ({"name": "ce", "label_smoothing": 1.5}, "label_smoothing"),
        ({"name": "focal_loss", "gamma": float("inf")}, "finite"),
        ("focal_loss(gamma=-1.0)", "gamma"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            lossjax.get(spec)
    # A shape that does not fit the sample is not a build-time error.
    assert lossjax.get({"name": "ce", "class_weights": [1.0, 2.0, 0.5]})


def test_a_huge_unknown_name_answers_fast():
    import time

    t0 = time.perf_counter()
    with pytest.raises((KeyError, registry.SpecError), match="characters"):
        lossjax.get("x" * 10_000_000)
    with pytest.raises(KeyError, match="characters"):
        lossjax.get({"name": "x" * 10_000_000})
    assert time.perf_counter() - t0 < 1.0
