#!/usr/bin/env python
# ruff: noqa  (Brian2's own example script, kept as Brian2 writes it)
"""Brian2's examples/CUBA.py (Vogels & Abbott 2005 benchmark, current-based synapses) on
gpuspike: the one changed line is ``import gpuspike`` + ``set_device('gpuspike')``.

``--duration`` (seconds, default 1.0 as in Brian2's script) shortens the run; the model
is unchanged.
"""
import argparse

from brian2 import *
import gpuspike  # noqa: F401
set_device('gpuspike')

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('--duration', type=float, default=1.0, help='simulated seconds')
parser.add_argument('--plot', action='store_true')
args = parser.parse_args()

taum = 20*ms
taue = 5*ms
taui = 10*ms
Vt = -50*mV
Vr = -60*mV
El = -49*mV

eqs = '''
dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt
'''

P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms,
                method='exact')
P.v = 'Vr + rand() * (Vt - Vr)'
P.ge = 0*mV
P.gi = 0*mV

we = (60*0.27/10)*mV  # excitatory synaptic weight (voltage)
wi = (-20*4.5/10)*mV  # inhibitory synaptic weight
Ce = Synapses(P, P, on_pre='ge += we')
Ci = Synapses(P, P, on_pre='gi += wi')
Ce.connect('i<3200', p=0.02)
Ci.connect('i>=3200', p=0.02)

s_mon = SpikeMonitor(P)

run(args.duration * second)

print(f'{s_mon.num_spikes} spikes, mean rate {s_mon.num_spikes / 4000 / args.duration:.2f} Hz')
if args.plot:
    plot(s_mon.t/ms, s_mon.i, ',k')
    xlabel('Time (ms)')
    ylabel('Neuron index')
    show()
