"""IEG + DivideMix co-guessing (the hybrid of nlx's research notes): two networks, each trained
IEG-style with its own meta step on the same noisy and trusted batches, whose guessed labels are
co-guessed from both networks in proportion to their meta weights.

Per step:
1. each network k guesses alone (IEG: mean softmax of its logit-normalised outputs over the K
   copies, p_k) and takes its meta step with its own sharpened guess: weights w_k, eps_k;
2. per sample, r_k = w_k / (w_1 + w_2) (when both weights are zero, both are set to a tiny
   epsilon first, so r = 1/2); the co-guess is sharpen(r_1 p_1 + r_2 p_2, T): the network whose
   meta step found the sample useful has the larger say;
3. each network's loss is IEG's (weighted CE + eps loss) / 2 + trusted mixup loss + ce_factor *
   guessed mixup loss + consistency_factor * consistency, all with the co-guessed label; both
   networks step, and each updates its EMA. Evaluation averages the two EMA networks.

With mis_threshold 1.1 (the default) every sample is possibly mislabelled, so both networks
learn from the same guessed labels. `sample_weights()` reports the mean of both networks'
weights, `label_trust()` the mean of their eps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlx.methods import register_method
from nlx.methods.base import Batch
from nlx.methods.dividemix import sharpen
from nlx.methods.ieg import IEG, IEGParams

TINY = 1e-8


def co_guess(probs: list[torch.Tensor], weights: list[torch.Tensor], T: float) -> torch.Tensor:
    """Two (B, C) predictions and two (B,) meta weights -> (B, C) sharpened guess
    sharpen(r1 * p1 + r2 * p2, T) with r_k = w_k / (w_1 + w_2); r = 1/2 where both weights are 0."""
    w1, w2 = weights
    both_zero = (w1 <= 0) & (w2 <= 0)
    w1 = torch.where(both_zero, torch.full_like(w1, TINY), w1.clamp(min=0))
    w2 = torch.where(both_zero, torch.full_like(w2, TINY), w2.clamp(min=0))
    r1 = (w1 / (w1 + w2))[:, None]
    return sharpen(r1 * probs[0] + (1 - r1) * probs[1], T)


@register_method("ieg_dividemix")
class IEGDivideMix(IEG):
    Params = IEGParams
    networks = 2

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        trusted = next(self.meta_stream)
        copies = self.copies(batch)
        onehot = F.one_hot(batch.y, self.ctx.num_classes).float()
        outs = [self.forward(learner.net, copies) for learner in self.learners]
        metas = [
            self.meta_step(learner, out.logits[0], onehot, sharpen(out.probs, p.T), trusted)
            for learner, out in zip(self.learners, outs)
        ]
        guess = co_guess([out.probs for out in outs], [meta.weights for meta in metas], p.T)
        parts = [
            self.loss(learner, out, onehot, guess, meta, copies, trusted)
            for learner, out, meta in zip(self.learners, outs, metas)
        ]
        for learner, part in zip(self.learners, parts):
            self.finish(learner, part["loss"])
        weights = (metas[0].weights + metas[1].weights) / 2
        self.weights.record(batch.idx, weights)
        self.eps.record(batch.idx, (metas[0].eps + metas[1].eps) / 2)
        metrics = {key: (parts[0][key].detach() + parts[1][key].detach()) / 2 for key in parts[0]}
        return metrics | {
            "loss1": parts[0]["loss"].detach(), "loss2": parts[1]["loss"].detach(),
            "meta/loss": (metas[0].meta_loss + metas[1].meta_loss) / 2,
        }
