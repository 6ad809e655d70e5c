@lbcl
Feature: Large B-cell lymphoma after CD19 CAR-T failure
  What postcart suggests when large B-cell lymphoma relapses or progresses after a CD19-directed CAR-T
  (axi-cel, tisa-cel, liso-cel). Unless a scenario says otherwise the patient has ECOG 1, no infection,
  no CNS disease, and everything else (biopsy results, donor, trial access, goals) is not yet known.

  Rule: A CD20xCD3 bispecific antibody is the standard option when CD20 is not lost

    @bispecific_antibody
    Scenario: Late relapse with CD19 retained
      Given a 58-year-old with large B-cell lymphoma who relapsed 11 months after axi-cel
      And CD19 is retained on re-biopsy
      And CD20 is positive on the failure biopsy
      When postcart assesses the situation
      Then a bispecific antibody is recommended
      And the rationale cites Dickinson 2022
      And the rationale mentions "CD20"

    @bispecific_antibody @antigen_loss
    Scenario: CD20 lost on the failure biopsy
      Given a 61-year-old with large B-cell lymphoma who relapsed 5 months after liso-cel
      And CD20 is negative on the failure biopsy
      When postcart assesses the situation
      Then a bispecific antibody is not advised
      And the rationale cites Dickinson 2022

  Rule: Allogeneic transplant is considered for a fit patient with a donor

    @allogeneic_hct @threshold
    Scenario Outline: Transplant depends on performance status
      Given a 52-year-old with large B-cell lymphoma who relapsed 7 months after axi-cel
      And a matched unrelated donor is available
      And ECOG performance status is <ecog>
      When postcart assesses the situation
      Then allogeneic transplant is <verdict>

      Examples:
        | ecog | verdict          |
        | 0    | to be considered |
        | 1    | to be considered |

    @allogeneic_hct @threshold
    Scenario Outline: Failure timing is classed by months since infusion
      Given a 66-year-old with large B-cell lymphoma who relapsed <months> months after tisa-cel
      When postcart assesses the situation
      Then postcart classes the failure timing as <timing>
      And long-term follow-up is recommended

      Examples:
        | months | timing     |
        | 0.9    | very early |
        | 2.9    | early      |
        | 3.1    | late       |
