# Reference numbers from R's mclust for gaussmix's tests (tests/test_mclust_models.py).
# Run from this directory:  Rscript make_reference.R
# (R 4.2.2, mclust 6.0.0 from Debian's r-base-core and r-cran-mclust).
suppressMessages(library(mclust))
options(digits = 15)
models <- mclust.options("emModelNames")
ref <- "tests/data/mclust_reference/"  # run from the repository root
iris4 <- as.matrix(read.csv(file.path(ref, "iris.csv"))[, 1:4])
faith <- as.matrix(read.csv(file.path(ref, "faithful.csv")))

wcsv <- function(x, f) write.csv(x, f, quote = TRUE)
bic_table <- function(b) { b <- unclass(b); attributes(b) <- attributes(b)[c("dim", "dimnames")]; b }

# 1. The default conjugate prior: BIC tables (hc start as without the prior).
for (nm in c("iris", "faithful")) {
  X <- if (nm == "iris") iris4 else faith
  wcsv(bic_table(mclustBIC(X, prior = priorControl())), paste0(nm, "_BIC_prior.csv"))
}

# 2. Per-model EM from the iris G = 3 hc start, with the prior: loglik and iterations.
cl <- hclass(hc(iris4, modelName = "VVV", use = "SVD"), 3)
z <- unmap(cl)
pm <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
out <- t(sapply(pm, function(m) {
  f <- me(iris4, modelName = m, z = z, prior = priorControl())
  c(loglik = f$loglik, iterations = attr(f, "info")[1])
}))
wcsv(out, "iris_G3_prior_loglik.csv")

# 3. Simulated data (rounded to 6 decimals so the stored CSV is exactly what R fitted).
set.seed(20240501)
n <- c(120, 90, 60)
mk <- function(m, S, k) sweep(matrix(rnorm(k * 3), k, 3) %*% chol(S), 2, m, "+")
S1 <- matrix(c(1, .6, .2, .6, 1, .3, .2, .3, 1), 3)
S2 <- diag(c(.3, 2, .5))
S3 <- matrix(c(2, -.8, 0, -.8, 1, .4, 0, .4, .6), 3)
sim3 <- round(rbind(mk(c(0, 0, 0), S1, n[1]), mk(c(3, 1, -2), S2, n[2]),
                    mk(c(-2, 4, 1), S3, n[3])), 6)
colnames(sim3) <- c("x1", "x2", "x3")
write.csv(sim3, "sim3.csv", row.names = FALSE)
hcp <- hc(sim3, modelName = "VVV", use = "SVD")
wcsv(hclass(hcp, 1:9), "sim3_hclass.csv")
b <- mclustBIC(sim3, initialization = list(hcPairs = hcp))
wcsv(bic_table(b), "sim3_BIC.csv")
b <- mclustBIC(sim3, initialization = list(hcPairs = hcp), prior = priorControl())
wcsv(bic_table(b), "sim3_BIC_prior.csv")

# 4. One-dimensional data (faithful waiting times): models E and V from quantile starts.
w <- faith[, "waiting"]
wcsv(sapply(1:9, function(G) mclust:::qclass(w, G)), "waiting_qclass.csv")
wcsv(bic_table(mclustBIC(w)), "waiting_BIC.csv")
wcsv(bic_table(mclustBIC(w, prior = priorControl())), "waiting_BIC_prior.csv")

# 5. mclust's VVE is not a monotone EM (its MM orientation step weighs components by their
#    det-1 shapes, not by 1 / lambda_k): the log-likelihood after each of 60 iterations
#    (tol 1e-10) from the given labels, on data drawn in Python (vve_data.csv).
v <- read.csv("vve_data.csv")
Xv <- as.matrix(v[, 1:3])
ll <- sapply(1:60, function(k) me(Xv, "VVE", unmap(v$label),
             control = emControl(tol = c(1e-10, sqrt(.Machine$double.eps)),
                                 itmax = c(k, .Machine$integer.max)))$loglik)
write.csv(data.frame(iteration = 1:60, loglik = ll), "vve_R_history.csv", row.names = FALSE)

# 6. Six dimensions: 300 rows from four Gaussians with random covariances (drawn in R).
set.seed(7)
sim6 <- do.call(rbind, lapply(1:4, function(k) {
  A <- matrix(rnorm(36), 6, 6) / 2
  sweep(matrix(rnorm(75 * 6), 75, 6) %*% A, 2, rnorm(6, sd = 2.5), "+")
}))
sim6 <- round(sim6, 6)
colnames(sim6) <- paste0("x", 1:6)
write.csv(sim6, "sim6.csv", row.names = FALSE)
hcp6 <- hc(sim6, modelName = "VVV", use = "SVD")
wcsv(hclass(hcp6, 1:9), "sim6_hclass.csv")
wcsv(bic_table(mclustBIC(sim6, initialization = list(hcPairs = hcp6))), "sim6_BIC.csv")

# 7. A noise component (mclust's Vinv = hypvol(X, reciprocal = TRUE)): faithful, the G = 3
#    hc start with every 10th row starting as noise; every model's loglik, iterations and
#    final noise proportion.
cl3 <- hclass(hc(faith, modelName = "VVV", use = "SVD"), 3)
noise <- (seq_len(nrow(faith)) %% 10) == 0
zn <- cbind(unmap(cl3) * (1 - noise), as.numeric(noise))
Vinv <- hypvol(faith, reciprocal = TRUE)
out <- t(sapply(models, function(m) {
  f <- me(faith, modelName = m, z = zn, Vinv = Vinv)
  c(loglik = f$loglik, iterations = unname(unlist(attr(f, "info"))[1]),
    noise_pro = f$parameters$pro[4], Vinv = Vinv)
}))
wcsv(out, "faithful_noise_G3.csv")
