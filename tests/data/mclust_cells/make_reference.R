# R's mclust 6.0.0 on the cells of issue 19 (see README.md). Run from this folder:
#   Rscript make_reference.R
# wine.csv (sklearn's load_wine(), the UCI wine data without the cultivar) and
# const_normal.csv (a constant column of 3s and 100 N(0, 1) draws rounded to 6 digits)
# were written by Python; swiss and thyroid come from R.
suppressMessages(library(mclust))
stopifnot(packageVersion("mclust") == "6.0.0")
write_table <- function(x, file) {
  x <- unclass(x)
  out <- matrix(as.vector(x), nrow = nrow(x), dimnames = dimnames(x))
  write.csv(out, file, na = "")
}
write.csv(datasets::swiss, "swiss.csv", row.names = FALSE)
data(thyroid)
write.csv(thyroid[, -1], "thyroid.csv", row.names = FALSE)
for (name in c("wine", "swiss", "thyroid", "const_normal")) {
  X <- as.matrix(read.csv(paste0(name, ".csv")))
  write_table(mclustBIC(X, verbose = FALSE), paste0(name, "_BIC.csv"))
}

# The cells that differ, refitted by mclust itself from the same starting partition
# with the columns reordered: a column order changes nothing in exact arithmetic.
orders <- list(wine = list(1:13, 13:1, c(9, 4, 7, 1, 2, 5, 11, 3, 13, 6, 12, 10, 8),
                           c(5, 10, 6, 12, 7, 1, 9, 13, 11, 8, 4, 2, 3)),
               swiss = list(1:6, 6:1, c(2, 1, 3:6), c(3, 1, 2, 4:6), c(6, 1:5)),
               thyroid = list(1:5, 5:1, c(2, 1, 3:5), c(3, 4, 5, 1, 2), c(5, 3, 1, 2, 4)))
cells <- list(wine = list(EEV = 7:9), swiss = list(EEV = 6:9), thyroid = list(VEE = 9))
rows <- NULL
for (name in names(cells)) {
  X <- as.matrix(read.csv(paste0(name, ".csv")))
  hcp <- hc(X, modelName = "VVV", use = "SVD")
  for (model in names(cells[[name]])) for (G in cells[[name]][[model]]) {
    z <- unmap(hclass(hcp, G))
    for (o in orders[[name]]) {
      fit <- me(X[, o], modelName = model, z = z, warn = FALSE)
      b <- if (is.na(fit$loglik)) NA else bic(model, fit$loglik, nrow(X), ncol(X), G)
      rows <- rbind(rows, data.frame(data = name, model = model, G = G,
                                     order = paste(o, collapse = " "), BIC = b))
    }
  }
}
write.csv(rows, "column_orders.csv", row.names = FALSE, na = "")

# One component (mclust's mvn) on a constant column: mclust's mean, the sum of (1/n) x_i,
# misses 0.1 (n = 178) by a few ulps, so that column has a tiny variance and a finite
# log-likelihood; it hits 0.5 (n = 64) exactly, and the fit is singular (NA).
set.seed(3)
write.csv(data.frame(const = 0.5, x = round(rnorm(64), 6)), "const_half_64.csv",
          row.names = FALSE)
write.csv(data.frame(const = 0.1, x = round(rnorm(178), 6)), "const_tenth_178.csv",
          row.names = FALSE)
rows <- NULL
for (name in c("const_half_64", "const_tenth_178")) {
  X <- as.matrix(read.csv(paste0(name, ".csv")))
  for (cls in c("XII", "XXI", "XXX"))
    rows <- rbind(rows, data.frame(data = name, class = cls,
                                   loglik = mvn(cls, X, warn = FALSE)$loglik))
}
write.csv(rows, "constant_column_mvn.csv", row.names = FALSE, na = "")
