# Reference results of mclust's MclustDA, EDDA, cvMclustDA, classPriorProbs and
# MclustSSC for tests/test_discriminant.py. Run from this folder:
#   Rscript make_reference.R
# Written with mclust 6.0.0 (Debian): its df of MclustDA/EDDA is the pre-6.1.1 one
# (EDDA: no class proportions counted, bic(equalPro = TRUE)).
suppressMessages(library(mclust))
stopifnot(packageVersion("mclust") >= "6.0.0")
writeLines(as.character(packageVersion("mclust")), "mclust_version.txt")

datasets <- list(
  iris = list(X = iris[, 1:4], y = iris$Species),
  banknote = list(X = banknote[, -1], y = banknote$Status),
  wdbc = list(X = wdbc[, 3:12], y = wdbc$Diagnosis),   # the ten "mean" features
  diabetes = list(X = diabetes[, -1], y = diabetes$class),
  thyroid = list(X = thyroid[, -1], y = thyroid$Diagnosis)
)

w <- function(df, file) write.csv(df, file, row.names = FALSE)

for (name in names(datasets)) {
  X <- data.matrix(datasets[[name]]$X)
  y <- factor(datasets[[name]]$y)
  n <- nrow(X)
  w(data.frame(X, class = y), paste0(name, ".csv"))
  summ <- NULL
  pred <- data.frame(row = seq_len(n))
  for (type in c("EDDA", "MclustDA")) {
    mod <- MclustDA(X, y, modelType = type, verbose = FALSE)
    s <- summary(mod)
    # cvMclustDA draws its folds with balancedFolds first: the same seed gives the
    # folds stored here (checked below by computing the error over them by hand).
    set.seed(1)
    folds <- mclust:::balancedFolds(y, nfolds = 10)
    set.seed(1)
    cv <- cvMclustDA(mod, nfold = 10, verbose = FALSE)
    fold <- integer(n)
    for (f in seq_along(folds)) fold[folds[[f]]] <- f
    err <- sapply(seq_along(folds), function(f) {
      I <- folds[[f]]
      m <- MclustDA(X[-I, , drop = FALSE], y[-I], modelType = type,
                    G = lapply(mod$models, function(m) m$G),
                    modelNames = lapply(mod$models, function(m) m$modelName),
                    verbose = FALSE)
      mean(predict(m, X[I, , drop = FALSE])$classification != y[I])
    })
    stopifnot(abs(sum(err * lengths(folds)) / n - cv$ce) < 1e-12)
    summ <- rbind(summ, data.frame(type = type, loglik = mod$loglik, df = mod$df,
                                   bic = mod$bic, error = s$ce, brier = s$brier,
                                   cv_ce = cv$ce, cv_se_ce = cv$se.ce,
                                   cv_brier = cv$brier, cv_se_brier = cv$se.brier))
    p <- predict(mod, X)
    pred[[paste0(type, "_class")]] <- as.character(p$classification)
    pred[[paste0(type, "_cv_class")]] <- as.character(cv$classification)
    pred[[paste0(type, "_fold")]] <- fold
    for (k in levels(y)) pred[[paste0(type, "_z_", k)]] <- p$z[, k]
    if (type == "EDDA") {
      bic <- mod$models[[1]]$BIC
      w(data.frame(model = names(bic), BIC = as.numeric(bic)),
        paste0(name, "_edda_bic.csv"))
      w(data.frame(class = names(mod$models),
                   n = sapply(mod$models[names(mod$models)], function(m) m$n),
                   model = mod$models[[1]]$modelName, G = 1),
        paste0(name, "_edda_models.csv"))
    } else {
      ms <- mod$models
      w(data.frame(class = names(ms), n = sapply(ms, function(m) m$n),
                   model = sapply(ms, function(m) m$modelName),
                   G = sapply(ms, function(m) m$G),
                   loglik = sapply(ms, function(m) m$loglik),
                   bic = sapply(ms, function(m)
                     2 * m$loglik - nMclustParams(m$modelName, m$d, m$G) * log(m$n))),
        paste0(name, "_da_models.csv"))
      # Class priors adjusted to new data with other class proportions: the first
      # class's rows and every third row of the others.
      idx <- which(y == levels(y)[1] | seq_len(n) %% 3 == 0)
      pri <- classPriorProbs(mod, X[idx, , drop = FALSE])
      padj <- predict(mod, X[idx, , drop = FALSE], prop = pri)
      w(data.frame(class = levels(y), prior = as.numeric(pri)),
        paste0(name, "_priors.csv"))
      w(data.frame(row = idx, class = as.character(padj$classification)),
        paste0(name, "_priors_pred.csv"))
    }
  }
  w(summ, paste0(name, "_summary.csv"))
  w(pred, paste0(name, "_predictions.csv"))

  # MclustSSC: a quarter of the rows keep their label (rows 1, 5, 9, ...).
  lab <- y
  lab[seq_len(n) %% 4 != 1] <- NA
  ssc <- MclustSSC(X, lab, verbose = FALSE)
  w(data.frame(model = colnames(ssc$BIC), BIC = as.numeric(ssc$BIC[1, ])),
    paste0(name, "_ssc_bic.csv"))
  w(data.frame(model = ssc$modelName, G = ssc$G, loglik = ssc$loglik, df = ssc$df,
               bic = ssc$bic), paste0(name, "_ssc_fit.csv"))
  w(data.frame(label = as.character(lab), classification = as.character(ssc$classification)),
    paste0(name, "_ssc_class.csv"))
  cat(name, "done\n")
}

# Mclust keeps EM's parameters for VEE (mstepVEE says returnCode 2 on success, so
# summary's extra M-step is dropped): the log-density of the returned parameters.
d <- read.csv("wdbc.csv")
XM <- data.matrix(d[d$class == "M", 1:10])
mc <- Mclust(XM, G = 2, modelNames = "VEE", verbose = FALSE)
ms <- mstep(XM, "VEE", z = mc$z)
w(data.frame(loglik = mc$loglik,
             dens_returned = sum(dens(XM, "VEE", parameters = mc$parameters,
                                      logarithm = TRUE)),
             dens_extra_mstep = sum(dens(XM, "VEE", parameters = ms$parameters,
                                         logarithm = TRUE)),
             returnCode = attr(ms, "returnCode")), "wdbc_M_VEE.csv")
