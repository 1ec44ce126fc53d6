//! DMA memory: IOVA allocation, buffers the device can reach, pools of small buffers.
