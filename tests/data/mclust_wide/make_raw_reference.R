# R's mclust 6.0.0 on raw breast cancer (issue 19). mclust's wdbc[, 3:32] is sklearn's
# load_breast_cancer().data, equal to the last bit. Run from this folder:
#   Rscript make_raw_reference.R            # the 12 models without EVE / VVE (~30 s)
#   Rscript make_raw_reference.R cells      # EVE / VVE cells, ~10 minutes each
suppressMessages(library(mclust))
stopifnot(packageVersion("mclust") == "6.0.0")
data(wdbc)
X <- as.matrix(wdbc[, 3:32])
if (length(commandArgs(TRUE)) == 0) {
  models <- setdiff(mclust.options("emModelNames"), c("EVE", "VVE"))
  x <- unclass(mclustBIC(X, modelNames = models, verbose = FALSE))
  write.csv(matrix(as.vector(x), nrow = nrow(x), dimnames = dimnames(x)),
            "breast_cancer_raw_BIC_12models.csv", na = "")
} else {
  hcp <- hc(X, modelName = "VVV", use = "SVD")
  rows <- NULL
  for (cell in c("EVE2", "VVE2", "EVE3", "VVE3", "EVE4", "VVE4", "EVE5", "VVE5")) {
    model <- substr(cell, 1, 3); G <- as.integer(substring(cell, 4))
    t <- system.time(fit <- me(X, modelName = model, z = unmap(hclass(hcp, G)),
                               warn = FALSE))[["elapsed"]]
    info <- attr(fit, "info")
    rows <- rbind(rows, data.frame(model = model, G = G, seconds = t,
                                   em_iterations = info[["niterout"]],
                                   loglik = sprintf("%.10f", fit$loglik),
                                   BIC = bic(model, fit$loglik, nrow(X), ncol(X), G)))
  }
  write.csv(rows, "breast_cancer_raw_R_cells.csv", row.names = FALSE)
}
