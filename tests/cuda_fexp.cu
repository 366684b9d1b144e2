/* tests/cuda_fexp.cu — kv_expf (common/fexp.h) evaluated on the device, for
 * test_cuda_ops to compare with the host's bits. Test code: it takes and
 * gives back device memory of its own. */
#include "common/fexp.h"

#include <cuda_runtime.h>

__global__ void fexp_kernel(const float *x, float *y, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = kv_expf(x[i]);
}

/* y[i] = kv_expf(x[i]) computed by the device; 0, or the CUDA error. */
extern "C" int tc_device_expf(const float *x, float *y, size_t n)
{
    float *dx = NULL, *dy = NULL;
    cudaError_t e = cudaMalloc(&dx, n * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc(&dy, n * sizeof(float));
    if (e == cudaSuccess) e = cudaMemcpy(dx, x, n * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) {
        fexp_kernel<<<1024, 256>>>(dx, dy, n);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess) e = cudaMemcpy(y, dy, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (dx) (void)cudaFree(dx);
    if (dy) (void)cudaFree(dy);
    return (int)e;
}
