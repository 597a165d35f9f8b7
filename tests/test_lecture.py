"""The lecture's claims about dense nets, checked exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxnet as jn


def test_dense_is_the_lectures_1x8_times_8x9():
    out_shape, params, _ = jn.nn.Dense(9).init(jax.random.key(0), (1, 8))
    assert out_shape == (1, 9)
    assert params["w"].shape == (8, 9)
    assert params["b"].shape == (9,)
    x = jnp.arange(8.0).reshape(1, 8)
    y, _ = jn.nn.Dense(9).apply(params, {}, x)
    np.testing.assert_allclose(y, x @ params["w"] + params["b"][None, :], rtol=1e-6)


def test_two_linear_layers_collapse_into_one():
    net = jn.serial(jn.nn.Dense(9), jn.nn.Dense(4))
    _, params, state = net.init(jax.random.key(0), (5, 8))
    w1, b1 = params["dense_0"]["w"], params["dense_0"]["b"]
    w2, b2 = params["dense_1"]["w"], params["dense_1"]["b"]
    w_star = w1 @ w2  # 8×9 · 9×4 = 8×4
    b_star = b1 @ w2 + b2
    assert w_star.shape == (8, 4)
    collapsed = {"w": w_star, "b": b_star}
    x = jax.random.normal(jax.random.key(1), (5, 8))
    deep, _ = net.apply(params, state, x)
    shallow, _ = jn.nn.Dense(4).apply(collapsed, {}, x)
    np.testing.assert_allclose(deep, shallow, rtol=1e-5, atol=1e-5)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _backprop_by_hand(w1, b1, w2, b2, x, t):
    """The lecture's rule, for L = mean over the batch of ½ Σ_k (y_k − t_k)², sigmoid units.

    Output unit k: δ_k = (y_k − t_k) y_k (1 − y_k). Hidden unit j: δ_j = Σ_k δ_k w_jk y_j (1 − y_j).
    Every weight: ∂L/∂w_ij = δ_j x_i (x_i the input of the layer), and ∂L/∂b_j = δ_j.
    """
    batch = x.shape[0]
    grads = {"w1": np.zeros_like(w1), "b1": np.zeros_like(b1)}
    grads |= {"w2": np.zeros_like(w2), "b2": np.zeros_like(b2)}
    for n in range(batch):
        hidden = _sigmoid(x[n] @ w1 + b1)
        out = _sigmoid(hidden @ w2 + b2)
        delta_out = (out - t[n]) * out * (1 - out)
        delta_hidden = np.array(
            [
                sum(delta_out[k] * w2[j, k] for k in range(w2.shape[1]))
                * hidden[j]
                * (1 - hidden[j])
                for j in range(w2.shape[0])
            ]
        )
        for i in range(w1.shape[0]):
            for j in range(w1.shape[1]):
                grads["w1"][i, j] += delta_hidden[j] * x[n, i] / batch
        for j in range(w2.shape[0]):
            for k in range(w2.shape[1]):
                grads["w2"][j, k] += delta_out[k] * hidden[j] / batch
        grads["b1"] += delta_hidden / batch
        grads["b2"] += delta_out / batch
    return grads


def _half_sse(net, params, x, t):
    y, _ = net.apply(params, {}, x)
    return 0.5 * jnp.sum((y - t) ** 2) / x.shape[0]


def test_jax_grad_equals_backpropagation_by_hand():
    net = jn.serial(jn.nn.Dense(5), jn.nn.Sigmoid, jn.nn.Dense(3), jn.nn.Sigmoid)
    _, params, _ = net.init(jax.random.key(0), (4, 6))
    x = np.asarray(jax.random.normal(jax.random.key(1), (4, 6)), np.float64)
    t = np.asarray(jax.random.uniform(jax.random.key(2), (4, 3)), np.float64)
    grads = jax.grad(_half_sse, argnums=1)(net, params, jnp.asarray(x), jnp.asarray(t))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    by_hand = _backprop_by_hand(
        p["dense_0"]["w"], p["dense_0"]["b"], p["dense_1"]["w"], p["dense_1"]["b"], x, t
    )
    np.testing.assert_allclose(grads["dense_0"]["w"], by_hand["w1"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grads["dense_0"]["b"], by_hand["b1"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grads["dense_1"]["w"], by_hand["w2"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grads["dense_1"]["b"], by_hand["b2"], rtol=1e-4, atol=1e-7)


def test_mse_gradient_is_the_half_sse_gradient_rescaled():
    net = jn.serial(jn.nn.Dense(5), jn.nn.Sigmoid, jn.nn.Dense(3), jn.nn.Sigmoid)
    _, params, _ = net.init(jax.random.key(0), (4, 6))
    x = jax.random.normal(jax.random.key(1), (4, 6))
    t = jax.random.uniform(jax.random.key(2), (4, 3))
    mse_grads = jax.grad(lambda p: jn.losses.mse(net.apply(p, {}, x)[0], t))(params)
    half_grads = jax.grad(_half_sse, argnums=1)(net, params, x, t)
    # mean over 4×3 entries of (y − t)² = (2 / 3) · (½ Σ_k (y − t)² averaged over the batch)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b * 2 / 3, rtol=1e-5), mse_grads, half_grads
    )


def test_one_sgd_step_is_u_minus_eta_grad():
    net = jn.serial(jn.nn.Dense(5), jn.nn.Sigmoid, jn.nn.Dense(3), jn.nn.Sigmoid)
    _, params, _ = net.init(jax.random.key(0), (4, 6))
    x = jax.random.normal(jax.random.key(1), (4, 6))
    t = jax.random.uniform(jax.random.key(2), (4, 3))
    eta = 0.5
    grads = jax.grad(_half_sse, argnums=1)(net, params, x, t)
    optimizer = optax.sgd(eta)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    stepped = optax.apply_updates(params, updates)
    expected = jax.tree.map(lambda u, g: u - eta * g, params, grads)
    jax.tree.map(np.testing.assert_array_equal, stepped, expected)
    assert _half_sse(net, stepped, x, t) < _half_sse(net, params, x, t)
