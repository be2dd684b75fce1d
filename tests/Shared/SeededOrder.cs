using Xunit.Abstractions;
using Xunit.Sdk;

namespace Orleans.KServe.Testing;

/// <summary>
/// Shuffles the order of test collections and of the tests in each class when <c>KSERVE_TEST_SEED</c> is set
/// (<c>KSERVE_TEST_SEED=42 ./test.sh</c>), the same way for the same seed, so that an order that fails can be run
/// again; without it the order is xunit's own. Tests must pass in any order: this is how that is checked.
/// </summary>
public sealed class SeededTestCaseOrderer : ITestCaseOrderer
{
    /// <summary>The environment variable holding the seed.</summary>
    public const string SeedVariable = "KSERVE_TEST_SEED";

    /// <inheritdoc />
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases)
        where TTestCase : ITestCase
    {
        var list = testCases.ToList();
        return SeededOrder.Seed is { } seed && list.Count > 1
            ? SeededOrder.Shuffle(list, seed, list[0].TestMethod.TestClass.Class.Name)
            : list;
    }
}

/// <summary>The collection half of <see cref="SeededTestCaseOrderer"/>.</summary>
public sealed class SeededTestCollectionOrderer : ITestCollectionOrderer
{
    /// <inheritdoc />
    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        var list = testCollections.OrderBy(c => c.DisplayName, StringComparer.Ordinal).ToList();
        return SeededOrder.Seed is { } seed ? SeededOrder.Shuffle(list, seed, list.Count > 0 ? list[0].TestAssembly.Assembly.Name : "") : list;
    }
}

internal static class SeededOrder
{
    public static int? Seed =>
        int.TryParse(Environment.GetEnvironmentVariable(SeededTestCaseOrderer.SeedVariable), out var seed) ? seed : null;

    /// <summary>A Fisher–Yates shuffle seeded by the seed and a stable hash of <paramref name="scope"/> (string hashes vary by process).</summary>
    public static List<T> Shuffle<T>(List<T> items, int seed, string scope)
    {
        var hash = 2166136261u;
        foreach (var c in scope)
        {
            hash = (hash ^ c) * 16777619u;
        }

        var random = new Random(seed ^ (int)hash);
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }

        return items;
    }
}
