/* Scalar gate functions shared by the operators, in double for accuracy. */
#ifndef SUBQ_OPS_GATES_H
#define SUBQ_OPS_GATES_H

#include <math.h>

/* log σ(x) = -softplus(-x), stable for any x. */
static inline double sq_logsigmoid(double x) { return (x < 0 ? x : 0) - log1p(exp(-fabs(x))); }
/* softplus(x) = log(1 + e^x), stable for any x. */
static inline double sq_softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static inline double sq_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

#endif
