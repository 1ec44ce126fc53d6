//! Interrupts as eventfds: RAII handles per IRQ index, waiting, async, ioeventfd.
