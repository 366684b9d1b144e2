/* cuda/probe_main.c — build/cuda/cuda-probe: exits 0 when this machine has a
 * CUDA device the CUDA port can run on (compute capability 8.0 or newer: the
 * build carries sm_80 and sm_90 code and compute_90 PTX), 1 with the reason
 * otherwise. `make TARGET=cuda test` asks it whether to run the GPU suites. */
#include <stdio.h>
#include <cuda_runtime_api.h>

int main(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        printf("cuda-probe: no usable CUDA device (cudaGetDeviceCount: %s)\n", cudaGetErrorString(e));
        return 1;
    }
    if (n == 0) {
        printf("cuda-probe: no CUDA device (cudaGetDeviceCount found none)\n");
        return 1;
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        struct cudaDeviceProp p;
        if ((e = cudaGetDeviceProperties(&p, i)) != cudaSuccess) {
            printf("cuda-probe: device %d: %s\n", i, cudaGetErrorString(e));
            continue;
        }
        printf("cuda-probe: device %d: %s, compute capability %d.%d, %.1f GiB\n", i, p.name, p.major, p.minor,
               (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
        if (i == 0) ok = p.major >= 8;
    }
    if (!ok) printf("cuda-probe: device 0 (the one kvgpt uses by default) is older than compute capability 8.0\n");
    return ok ? 0 : 1;
}
