#include "core.h"

#include <cblas.h>

void sq_sgemm(int transA, int transB, int M, int N, int Kd, float alpha,
              const float *A, int lda, const float *Bm, int ldb, float beta,
              float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, Kd, alpha, A, lda, Bm, ldb, beta, C, ldc);
}
