using Orleans.KServe.Silo;

try
{
    var app = SiloHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (InvalidServerOptionsException e)
{
    Console.Error.WriteLine($"orleans-kserve: {e.Message}");
    return 2;
}

/// <summary>The server's entry point (public for test hosts).</summary>
public partial class Program;
