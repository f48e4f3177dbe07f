#!/usr/bin/env python
# ruff: noqa  (Brian2's own example script, kept as Brian2 writes it)
"""Brian2's examples/COBAHH.py (Brette et al. 2007 benchmark 3: Hodgkin-Huxley neurons
with conductance-based synapses) on gpuspike: the one changed line is ``import gpuspike``
+ ``set_device('gpuspike')``. ``--duration`` (seconds, default 1.0 as in Brian2) shortens
the run; the model is unchanged.
"""
import argparse

from brian2 import *
import gpuspike  # noqa: F401
set_device('gpuspike')

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument('--duration', type=float, default=1.0, help='simulated seconds')
parser.add_argument('--plot', action='store_true')
args = parser.parse_args()

# Parameters
area = 20000*umetre**2
Cm = (1*ufarad*cm**-2) * area
gl = (5e-5*siemens*cm**-2) * area
El = -60*mV
EK = -90*mV
ENa = 50*mV
g_na = (100*msiemens*cm**-2) * area
g_kd = (30*msiemens*cm**-2) * area
VT = -63*mV
# Time constants
taue = 5*ms
taui = 10*ms
# Reversal potentials
Ee = 0*mV
Ei = -80*mV
we = 6*nS  # excitatory synaptic weight
wi = 67*nS  # inhibitory synaptic weight

# The model
eqs = Equations('''
dv/dt = (gl*(El-v)+ge*(Ee-v)+gi*(Ei-v)-
         g_na*(m*m*m)*h*(v-ENa)-
         g_kd*(n*n*n*n)*(v-EK))/Cm : volt
dm/dt = alpha_m*(1-m)-beta_m*m : 1
dn/dt = alpha_n*(1-n)-beta_n*n : 1
dh/dt = alpha_h*(1-h)-beta_h*h : 1
dge/dt = -ge*(1./taue) : siemens
dgi/dt = -gi*(1./taui) : siemens
alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
''')

P = NeuronGroup(4000, model=eqs, threshold='v>-20*mV', refractory=3*ms,
                method='exponential_euler')
Pe = P[:3200]
Pi = P[3200:]
Ce = Synapses(Pe, P, on_pre='ge+=we')
Ci = Synapses(Pi, P, on_pre='gi+=wi')
Ce.connect(p=0.02)
Ci.connect(p=0.02)

# Initialization
P.v = 'El + (randn() * 5 - 5)*mV'
P.ge = '(randn() * 1.5 + 4) * 10.*nS'
P.gi = '(randn() * 12 + 20) * 10.*nS'

# Record a few traces
trace = StateMonitor(P, 'v', record=[1, 10, 100])
spikes = SpikeMonitor(P)
run(args.duration * second, report='text')

print(f'{spikes.num_spikes} spikes, mean rate {spikes.num_spikes / 4000 / args.duration:.2f} Hz')
if args.plot:
    plot(trace.t/ms, trace[1].v/mV)
    plot(trace.t/ms, trace[10].v/mV)
    plot(trace.t/ms, trace[100].v/mV)
    xlabel('t (ms)')
    ylabel('v (mV)')
    show()
