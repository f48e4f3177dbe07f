#!/usr/bin/env python
# ruff: noqa  (Brian2's own example script, kept as Brian2 writes it)
"""Brian2's examples/synapses/STDP.py (Song, Miller & Abbott 2000: spike-timing dependent
plasticity, 1000 Poisson inputs onto one neuron) on gpuspike: the one changed line is
``import gpuspike`` + ``set_device('gpuspike')``.

Brian2 runs it for 100 s; ``--duration`` (default 5 s here, to stay under a minute on a
CPU) shortens the run; the model is unchanged.
"""
import argparse

from brian2 import *
import gpuspike  # noqa: F401
set_device('gpuspike')

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('--duration', type=float, default=5.0, help='simulated seconds')
parser.add_argument('--plot', action='store_true')
args = parser.parse_args()

N = 1000
taum = 10*ms
taupre = 20*ms
taupost = taupre
Ee = 0*mV
vt = -54*mV
vr = -60*mV
El = -74*mV
taue = 5*ms
F = 15*Hz
gmax = .01
dApre = .01
dApost = -dApre * taupre / taupost * 1.05
dApost *= gmax
dApre *= gmax

eqs_neurons = '''
dv/dt = (ge * (Ee-v) + El - v) / taum : volt
dge/dt = -ge / taue : 1
'''

poisson_input = PoissonGroup(N, rates=F)
neurons = NeuronGroup(1, eqs_neurons, threshold='v>vt', reset='v = vr',
                      method='euler')
S = Synapses(poisson_input, neurons,
             '''w : 1
                dApre/dt = -Apre / taupre : 1 (event-driven)
                dApost/dt = -Apost / taupost : 1 (event-driven)''',
             on_pre='''ge += w
                    Apre += dApre
                    w = clip(w + Apost, 0, gmax)''',
             on_post='''Apost += dApost
                     w = clip(w + Apre, 0, gmax)''',
             )
S.connect()
S.w = 'rand() * gmax'
mon = StateMonitor(S, 'w', record=[0, 1])
s_mon = SpikeMonitor(poisson_input)

run(args.duration * second, report='text')

print(f'input spikes {s_mon.num_spikes}, mean w/gmax {np.mean(S.w / gmax):.3f}, '
      f'fraction of w/gmax > 0.9: {np.mean(S.w / gmax > 0.9):.3f}')
if args.plot:
    subplot(311)
    plot(S.w / gmax, '.k')
    ylabel('Weight / gmax')
    xlabel('Synapse index')
    subplot(312)
    hist(S.w / gmax, 20)
    xlabel('Weight / gmax')
    subplot(313)
    plot(mon.t/second, mon.w.T/gmax)
    xlabel('Time (s)')
    ylabel('Weight / gmax')
    tight_layout()
    show()
