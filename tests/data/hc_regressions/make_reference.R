# R's merges (and, for ring.csv, its BIC table) for every data set of this folder.
# R 4.2.2, mclust 6.0.0 (Debian: r-base-core, r-cran-mclust). Run here: Rscript make_reference.R
suppressMessages(library(mclust))
for (f in list.files(".", "^(readback_[0-9]+|ring)\\.csv$")) {
  X <- as.matrix(read.csv(f))
  base <- sub("\\.csv$", "", f)
  h <- hc(X, modelName = "VVV", use = "SVD")
  write.csv(t(h), paste0(base, "_hcPairs.csv"), row.names = FALSE)
  if (base == "ring") {
    b <- mclustBIC(X, verbose = FALSE)
    write.csv(matrix(as.numeric(b), nrow = nrow(b), dimnames = dimnames(b)),
              paste0(base, "_BIC.csv"))
  }
}
