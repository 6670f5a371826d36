# R's mclust 6.0.0 on standardised breast cancer (issue 19), for tests/test_mclust_wide.py.
# bc_std.csv is sklearn's load_breast_cancer().data (= mclust's wdbc[, 3:32]) centred and
# divided by the sd (n - 1), written by NumPy (README.md has the line); run from here:
#   Rscript make_reference.R
suppressMessages(library(mclust))
stopifnot(packageVersion("mclust") == "6.0.0")
X <- as.matrix(read.csv("bc_std.csv", header = FALSE))
hcp <- hc(X, modelName = "VVV", use = "SVD")
# The first EM iterations with mclust's own inner rule (itmax[2] = .Machine$integer.max):
# the inner iterations of the last M-step and the log-likelihood.
rows <- NULL
for (model in c("EVE", "VVE")) for (G in 2:3) for (itout in c(1, 3)) {
  fit <- me(X, modelName = model, z = unmap(hclass(hcp, G)),
            control = emControl(itmax = c(itout, .Machine$integer.max)), warn = FALSE)
  inner <- attr(attr(fit, "info"), "inner")
  rows <- rbind(rows, data.frame(model = model, G = G, em_iterations = itout,
                                 inner_iterations = inner[["niterin"]],
                                 loglik = sprintf("%.10f", fit$loglik)))
}
write.csv(rows, "breast_cancer_std_first_iterations.csv", row.names = FALSE)
# The iterative models' full cells on the first 10 columns.
B <- mclustBIC(X[, 1:10], G = 2:5, modelNames = c("VEI", "VEE", "VEV", "EVE", "VVE"),
               verbose = FALSE)
x <- unclass(B)
write.csv(matrix(as.vector(x), nrow = nrow(x), dimnames = dimnames(x)),
          "breast_cancer_std10_BIC.csv", na = "")
