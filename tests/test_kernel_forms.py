"""The kernel forms the stacked engine computes a member's numbers with give that member the same
bits whatever its stack (member 1 of 3, at an offset in memory, against itself alone) and at one
and two threads, on the machine the suite runs on (``inference_zoo/engine/stack/kernel_forms.py``); the
engine's checks of what rests on torch's internals fall back, and say so, where they fail."""
from __future__ import annotations

import warnings

import torch

from inference_zoo.engine.stack import kernel_forms
from inference_zoo.engine.stack import adam as member_adam
from inference_zoo.engine.stack import matmul as member_matmul


def test_every_engine_form_gives_a_member_the_same_bits_in_any_stack_and_at_any_thread_count():
    results = kernel_forms.scan(kernel_forms.ENGINE_FORMS, threads=(1, 2))
    differing = {name: bad[:5] for name, (bad, _) in results.items() if bad}
    assert all(total > 0 for _, total in results.values())
    assert not differing, f"forms that differ (threads, batch, in, out, what): {differing}"


def test_the_scan_reports_the_batched_forms_beside_them():
    """The plain batched forms are scanned too (for information: on many CPUs some shapes differ)."""
    results = kernel_forms.scan(kernel_forms.BATCHED_FORMS, threads=(1,), widths=(1, 13), batches=(21,))
    assert set(results) == set(kernel_forms.BATCHED_FORMS) and all(total == 4 for _, total in results.values())


def test_a_batched_matmul_is_used_only_where_it_gave_every_member_its_one_thread_bits(monkeypatch):
    """A signature whose batched call differs from the per-member one-thread form takes that form."""
    a, b = torch.randn(3, 5, 7), torch.randn(3, 7, 4)
    canonical = torch.stack([torch.mm(a[k], b[k]) for k in range(3)])
    monkeypatch.setattr(member_matmul, "_verdicts", {})
    monkeypatch.setattr(torch, "bmm", lambda x, y: torch.zeros(3, 5, 4))  # a "batched kernel" that disagrees
    assert torch.equal(member_matmul.member_mm(a, b), canonical)
    assert list(member_matmul.verdicts().values()) == [False]
    assert torch.equal(member_matmul.member_mm(a, b), canonical)  # the verdict holds: still canonical
    monkeypatch.undo()
    member_matmul._verdicts.clear()
    assert torch.equal(member_matmul.member_mm(a, b), canonical)


def test_a_verdict_is_not_fooled_by_operands_whose_products_agree_by_chance(monkeypatch):
    """The first call of a signature may carry zeros (a dead unit's gradient) on which any two
    kernels agree; the verdict is taken on random operands of that signature instead, so a batched
    kernel that rounds differently is never adopted from such a call."""
    real_bmm = torch.bmm
    monkeypatch.setattr(member_matmul, "_verdicts", {})
    monkeypatch.setattr(torch, "bmm", lambda x, y: real_bmm(x, y) * (1 + 2 ** -20))  # agrees on zeros only
    zeros = torch.zeros(3, 5, 7)
    b = torch.randn(3, 7, 4)
    assert torch.equal(member_matmul.member_mm(zeros, b), torch.zeros(3, 5, 4))
    assert list(member_matmul.verdicts().values()) == [False]
    a = torch.randn(3, 5, 7)
    assert torch.equal(member_matmul.member_mm(a, b), torch.stack([torch.mm(a[k], b[k]) for k in range(3)]))


def test_a_probe_has_its_operands_shape_strides_and_alignment():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(40, 9)
    for t in (base[1:, 2:7].t(), base.view(4, 10, 9)[:, 3:], base.view(-1)[5:].view(5, 71)[:, :70].unsqueeze(-1)):
        probe = member_matmul._probe(t, g)
        assert (probe.shape, probe.stride(), probe.data_ptr() % 64) == (t.shape, t.stride(), t.data_ptr() % 64)
        assert probe.abs().min() > 0 or probe.std() > 0.5  # random values, not zeros


def test_the_merged_adam_step_is_checked_once_per_thread_count_and_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(member_adam, "_merge_exact", {})
    assert member_adam.merged_step_is_exact()  # torch's kernel as it is: the merge is exact
    monkeypatch.setattr(member_adam, "_merge_exact", {})
    monkeypatch.setattr(member_adam, "_probe_merged_step", lambda: False)  # a torch whose kernel changed
    p = torch.nn.Parameter(torch.randn(2, 32))
    opt = member_adam.MemberAdam([p], [1e-3, 1e-3], kernel={"fused": True})
    calls = []
    monkeypatch.setattr(opt, "_per_member_step", lambda *args: calls.append("per member"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            p.grad = torch.ones_like(p)
            opt.step()
    assert calls == ["per member"] * 3
    assert len([w for w in caught if "fused Adam" in str(w.message)]) == 1


def test_the_backward_pass_skips_the_gradients_no_loss_asked_for():
    """torch's private answer to 'will this node run' is probed before it is used, and with it a
    loss that asks for the weights only runs no input-gradient matmul."""
    from torch.profiler import ProfilerActivity, profile

    member_matmul.member_linear(torch.randn(1, 2, 3), torch.randn(1, 2, 2), None)  # runs the probe
    assert member_matmul._SKIPS is True
    w = torch.randn(2, 8, 6, requires_grad=True)
    x0 = torch.randn(2, 6, 5, requires_grad=True)

    def matmuls(inputs):
        for _ in range(2):  # the first call of a signature also checks the batched form
            y = member_matmul.member_linear(x0 * 1.0, w, None)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                torch.autograd.grad(y.sum(), inputs)
        return sum(e.count for e in prof.key_averages() if e.key in ("aten::bmm", "aten::mm"))

    weights_only, both = matmuls([w]), matmuls([w, x0])
    assert 1 <= weights_only < both <= 4
