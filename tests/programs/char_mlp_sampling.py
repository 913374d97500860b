"""A character-level MLP language model in the style of the public notebooks: embeddings, a hidden layer with
batch normalisation written out, tanh and dropout, cross entropy, a hand-written SGD loop, then names sampled
with multinomial. Run as ``python char_mlp_sampling.py torch`` or ``... gradcore``: the program is the same,
only the import differs, and it prints the last loss and the sampled names.
"""
import importlib
import sys

lib = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "gradcore")
F = lib.nn.functional
lib.manual_seed(42)

words = ["emma", "olivia", "ava", "isabella", "sophia", "charlotte", "mia", "amelia", "harper", "evelyn"] * 3
chars = sorted(set("".join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi["."] = 0
itos = {i: s for s, i in stoi.items()}
vocab = len(stoi)
block = 3
xs, ys = [], []
for w in words:
    context = [0] * block
    for ch in w + ".":
        xs.append(context)
        ys.append(stoi[ch])
        context = context[1:] + [stoi[ch]]
X, Y = lib.tensor(xs), lib.tensor(ys)

g = lib.Generator().manual_seed(2147483647)
C = lib.randn((vocab, 10), generator=g)
W1 = lib.randn((block * 10, 64), generator=g) * 0.2
b1 = lib.randn(64, generator=g) * 0.01
W2 = lib.randn((64, vocab), generator=g) * 0.01
b2 = lib.randn(vocab, generator=g) * 0
bngain, bnbias = lib.ones((1, 64)), lib.zeros((1, 64))
parameters = [C, W1, b1, W2, b2, bngain, bnbias]
for p in parameters:
    p.requires_grad = True

for step in range(60):
    ix = lib.randint(0, X.shape[0], (16,), generator=g)
    emb = C[X[ix]]
    h = emb.view(emb.shape[0], -1) @ W1 + b1
    h = bngain * (h - h.mean(0, keepdim=True)) / h.std(0, keepdim=True) + bnbias
    h = F.dropout(lib.tanh(h), 0.1)
    loss = F.cross_entropy(h @ W2 + b2, Y[ix])
    for p in parameters:
        p.grad = None
    loss.backward()
    lr = 0.1 if step < 40 else 0.01
    for p in parameters:
        p.data += -lr * p.grad
print(f"loss {loss.item():.6f}")

g = lib.Generator().manual_seed(2147483647 + 10)
for _ in range(8):
    out, context = [], [0] * block
    while True:
        emb = C[lib.tensor([context])]
        h = lib.tanh(emb.view(1, -1) @ W1 + b1)
        probs = F.softmax(h @ W2 + b2, dim=1)
        ix = lib.multinomial(probs, num_samples=1, generator=g).item()
        context = context[1:] + [ix]
        out.append(ix)
        if ix == 0 or len(out) > 20:
            break
    print("".join(itos[i] for i in out))
