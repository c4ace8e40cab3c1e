"""Transformer encoder layer written out: 2-head attention with matmul/softmax, residuals,
LayerNorm with affine, an MLP with relu and gelu(tanh)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class EncoderLayer(nn.Module):
    def __init__(self, d_model=16, heads=2, d_ff=32):
        super().__init__()
        self.h = heads
        self.dk = d_model // heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model, eps=1e-6)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_ff)
        self.ff3 = nn.Linear(d_ff, d_model)
        with torch.no_grad():
            self.ln1.weight.uniform_(0.5, 1.5)
            self.ln1.bias.uniform_(-0.1, 0.1)

    def forward(self, x):                                   # x: [B, T, D]
        B, T, D = x.shape
        q = self.q(x).view(B, T, self.h, self.dk).transpose(1, 2)
        k = self.k(x).view(B, T, self.h, self.dk).transpose(1, 2)
        v = self.v(x).view(B, T, self.h, self.dk).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dk)
        attn = F.softmax(scores, dim=-1)
        ctx = torch.matmul(attn, v).transpose(1, 2).contiguous().view(B, T, D)
        x = self.ln1(x + self.o(ctx))
        f = self.ff3(F.gelu(self.ff2(F.relu(self.ff1(x))), approximate="tanh"))
        return self.ln2(x + f)
