using Orleans.KServe.ModelTools;

return ModelToolsCommand.Run(args, Console.Out, Console.Error);
