"""One run, below the recipe (`pipelines.recipe`): its directory (`run_dir`), the parts a config
names (`build`), the trial callbacks (`callbacks`), the refit (`refit`), what a finished search
writes (`artifacts`), the final pick across seeds (`final_pick`, `final_retrain`), the summary
(`summary`), forecasts from a saved run (`predict`), and the console (`progress`, `quiet`)."""
