# Reference tables from R's mclust for gaussmix's tests (see README.md).
# Run from this folder:  Rscript make_reference.R
suppressMessages(library(mclust))
stopifnot(packageVersion("mclust") == "6.0.0")

write_table <- function(x, file) {
  x <- unclass(x)
  out <- matrix(as.vector(x), nrow = nrow(x), dimnames = dimnames(x))
  write.csv(out, file, na = "")
}

write_best <- function(m, file) {
  write.csv(data.frame(model = m$modelName, G = m$G, loglik = m$loglik, df = m$df,
                       bic = m$bic, icl = m$icl, n = m$n),
            file, row.names = FALSE)
}

run <- function(name, X, noise = NULL, prior = NULL, subset = NULL, icl = TRUE,
                hc = TRUE) {
  init <- list(noise = noise, subset = subset)
  BIC <- mclustBIC(X, prior = prior, initialization = init, verbose = FALSE)
  write_table(BIC, paste0(name, "_BIC.csv"))
  m <- Mclust(X, x = BIC, verbose = FALSE)
  write_best(m, paste0(name, "_best.csv"))
  write.csv(data.frame(classification = m$classification,
                       uncertainty = m$uncertainty),
            paste0(name, "_classification.csv"), row.names = FALSE)
  if (icl) {
    ICL <- mclustICL(X, prior = prior, initialization = init, verbose = FALSE)
    write_table(ICL, paste0(name, "_ICL.csv"))
  }
  if (hc) {
    rows <- if (is.null(subset)) seq_len(nrow(X)) else subset
    if (!is.null(noise)) rows <- setdiff(rows, noise)
    h <- hc(X[rows, , drop = FALSE], modelName = "VVV", use = "SVD")
    write.csv(t(h), paste0(name, "_hcPairs.csv"), row.names = FALSE)
  }
  invisible(BIC)
}

# Real data shipped with mclust.
data(diabetes)
run("diabetes", as.matrix(diabetes[, -1]))
write.csv(diabetes[, -1], "diabetes.csv", row.names = FALSE)
data(banknote)
run("banknote", as.matrix(banknote[, -1]))
write.csv(banknote[, -1], "banknote.csv", row.names = FALSE)
# The conjugate prior (mclust drops EVE, VEE, VVE, EVV with a prior).
run("diabetes_prior", as.matrix(diabetes[, -1]), prior = priorControl(), hc = FALSE)

# Synthetic mixtures written by make_data.py.
run("mix3d", as.matrix(read.csv("mix3d.csv")))
X1 <- read.csv("mix1d.csv")$x1
BIC1 <- mclustBIC(X1, verbose = FALSE)
write_table(BIC1, "mix1d_BIC.csv")
m1 <- Mclust(X1, x = BIC1, verbose = FALSE)
write_best(m1, "mix1d_best.csv")
write.csv(data.frame(classification = m1$classification,
                     uncertainty = m1$uncertainty),
          "mix1d_classification.csv", row.names = FALSE)
write_table(mclustICL(X1, verbose = FALSE), "mix1d_ICL.csv")
q <- sapply(2:9, function(k) mclust:::qclass(X1, k))
colnames(q) <- 2:9
write.csv(q, "mix1d_qclass_G2to9.csv", row.names = FALSE)

# More than 2000 rows: mclust initialises on a random subset of 2000; we keep it.
Xb <- as.matrix(read.csv("big2d.csv"))
set.seed(1)
sub <- sort(sample(seq_len(nrow(Xb)), 2000))
write.csv(data.frame(row = sub), "big2d_subset.csv", row.names = FALSE)
run("big2d", Xb, subset = sub, icl = FALSE)

# A uniform noise component, started from the rows in noise2d_noise_rows.csv.
Xn <- as.matrix(read.csv("noise2d.csv"))
nz <- read.csv("noise2d_noise_rows.csv")$row
run("noise2d", Xn, noise = nz)
write.csv(data.frame(hypvol = hypvol(Xn)), "noise2d_hypvol.csv", row.names = FALSE)

# Quantile classes of data with many ties.
q <- sapply(2:6, function(k) mclust:::qclass(round(X1), k))
colnames(q) <- 2:6
write.csv(q, "mix1d_round_qclass_G2to6.csv", row.names = FALSE)

# n <= d: Ward's (EII) agglomeration and the spherical / diagonal models only.
Xw <- as.matrix(read.csv("wide.csv"))
BICw <- mclustBIC(Xw, verbose = FALSE)
write_table(BICw, "wide_BIC.csv")
hw <- hc(Xw, modelName = "EII", use = "SVD")
write.csv(t(hw), "wide_hcPairs_EII.csv", row.names = FALSE)
